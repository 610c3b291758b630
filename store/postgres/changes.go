package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ChangeChannel is the PostgreSQL notification channel on which the
// database announces the changes every replica must apply at once
// (migration 0840): triggers send a payload naming what changed when the
// changing transaction commits, whoever made the change (a gateway
// replica, the command line, SQL).
const ChangeChannel = "mcpgate_change"

// The kinds of change announced on ChangeChannel, as WatchChanges
// reports them.
const (
	// ChangeRevocations: a revocation was recorded or lifted (the
	// revocations table).
	ChangeRevocations = "revocations"
	// ChangeClients: a client was added, approved, refused or removed, or
	// its inventory record changed (the clients and inventory_clients
	// tables).
	ChangeClients = "clients"
	// ChangeSessionEnded: a downstream session ended; the id is the
	// session's.
	ChangeSessionEnded = "session_ended"
	// ChangeAll: the listening connection broke and was made again;
	// changes may have been missed, so everything may have changed.
	ChangeAll = "all"
)

// WatchChanges calls fn for every change announced on ChangeChannel until
// ctx ends: the kind (ChangeRevocations, ChangeClients,
// ChangeSessionEnded) and, for a session, its id. It listens on a
// connection of its own, made before WatchChanges returns (its error is
// returned), so a change committed after the call returns is always
// reported. When the connection breaks it reconnects (waiting up to 2 s
// between attempts) and then calls fn(ChangeAll, ""), since changes
// announced meanwhile are lost. fn runs on the watching goroutine, one
// call at a time, and must not block for long: notifications wait
// (PostgreSQL queues them, up to its queue's size) while it runs.
// Payloads of other kinds (someone else NOTIFYing the channel) are
// ignored.
func (s *Store) WatchChanges(ctx context.Context, fn func(kind, id string)) error {
	conn, err := s.listenOn(ctx, ChangeChannel)
	if err != nil {
		return wrap("listen for changes", err)
	}
	go func() {
		for {
			err := forwardChanges(ctx, conn, fn)
			conn.Close(context.Background())
			if ctx.Err() != nil || err == nil {
				return
			}
			if conn = s.relistenOn(ctx, ChangeChannel); conn == nil {
				return
			}
			fn(ChangeAll, "")
		}
	}()
	return nil
}

// forwardChanges calls fn for each change notified on conn; it returns
// nil when ctx ends, the connection's error otherwise.
func forwardChanges(ctx context.Context, conn *pgx.Conn, fn func(kind, id string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		kind, id, _ := strings.Cut(n.Payload, ":")
		switch kind {
		case ChangeRevocations, ChangeClients:
			fn(kind, "")
		case ChangeSessionEnded:
			if id != "" {
				fn(kind, id)
			}
		}
	}
}
