package postgres

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevocationChannel is the PostgreSQL notification channel on which the
// database announces every change of the token revocation version (a
// trigger on access_tokens sends the new version as the payload, at the
// commit of the revoking transaction, whoever revoked: a gateway replica,
// the command line, or SQL).
const RevocationChannel = "mcpgate_token_revocation"

// TokenRevocationVersion returns a number that changes whenever an access
// token is revoked in this database, by any process (a trigger on
// access_tokens counts the revocations).
func (s *Store) TokenRevocationVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM token_revocation_version WHERE id = 1`).Scan(&v)
	return v, wrap("token revocation version", err)
}

// OnTokenRevoked registers fn to be called, in this process, after every
// revocation of access tokens through this Store (RevokeAccessToken,
// RevokeFamily), so that a token cache forgets them at once. fn must not
// block. Revocations by other processes are announced by
// WatchTokenRevocations.
func (s *Store) OnTokenRevoked(fn func()) {
	s.revokeMu.Lock()
	defer s.revokeMu.Unlock()
	s.onRevoke = append(s.onRevoke, fn)
}

// tokensRevoked calls the OnTokenRevoked functions.
func (s *Store) tokensRevoked() {
	s.revokeMu.Lock()
	fns := s.onRevoke
	s.revokeMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// revokeHooks are the OnTokenRevoked functions.
type revokeHooks struct {
	revokeMu sync.Mutex
	onRevoke []func()
}

// watchRetry bounds the wait between two attempts to listen again after
// the listening connection broke.
const watchRetry = 2 * time.Second

// WatchTokenRevocations pushes the token revocation version whenever it
// changes in the database, by any process: it LISTENs on
// RevocationChannel on a connection of its own (not one of the pool's)
// and sends each new version on the returned channel. The channel holds
// one value: a receiver that falls behind gets the latest version, never
// a backlog. When the connection breaks it reconnects (waiting up to 2 s
// between attempts) and then sends the current version, since
// notifications sent meanwhile are lost. The channel is closed when ctx
// ends. The first connection is made before WatchTokenRevocations
// returns, and its error returned, so a change committed after the call
// returns is always announced.
//
// The gateway's token cache empties itself at each push (internal/app).
func (s *Store) WatchTokenRevocations(ctx context.Context) (<-chan int64, error) {
	conn, err := s.listenOn(ctx, RevocationChannel)
	if err != nil {
		return nil, wrap("listen for revocations", err)
	}
	ch := make(chan int64, 1)
	go s.watch(ctx, conn, ch)
	return ch, nil
}

// listenOn opens a connection with the pool's settings and LISTENs on
// channel with it.
func (s *Store) listenOn(ctx context.Context, channel string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// watch forwards notifications from conn to ch until ctx ends,
// reconnecting when conn breaks.
func (s *Store) watch(ctx context.Context, conn *pgx.Conn, ch chan int64) {
	defer close(ch)
	for {
		err := forward(ctx, conn, ch)
		conn.Close(context.Background())
		if ctx.Err() != nil || err == nil {
			return
		}
		conn = s.relistenOn(ctx, RevocationChannel)
		if conn == nil {
			return
		}
		// Changes made while no connection listened were not announced.
		if v, err := s.TokenRevocationVersion(ctx); err == nil {
			offer(ch, v)
		}
	}
}

// relistenOn reconnects and listens on channel until it succeeds (nil
// when ctx ends first).
func (s *Store) relistenOn(ctx context.Context, channel string) *pgx.Conn {
	wait := 50 * time.Millisecond
	for {
		conn, err := s.listenOn(ctx, channel)
		if err == nil {
			return conn
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, watchRetry)
	}
}

// forward sends the versions notified on conn to ch; it returns nil when
// ctx ends, the connection's error otherwise.
func forward(ctx context.Context, conn *pgx.Conn, ch chan int64) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		v, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue // not ours: someone else NOTIFYing the channel
		}
		offer(ch, v)
	}
}

// offer puts v in ch, replacing a value not yet received.
func offer(ch chan int64, v int64) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
