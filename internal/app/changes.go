package app

import (
	"context"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/inventory"
)

// The kinds of change a changeWatcher reports (store/postgres's Change*
// constants).
const (
	changeRevocations  = "revocations"
	changeClients      = "clients"
	changeSessionEnded = "session_ended"
	changeAll          = "all"
)

// changeWatcher is a store that announces the changes other processes
// make (postgres.Store: LISTEN/NOTIFY on mcpgate_change).
type changeWatcher interface {
	WatchChanges(ctx context.Context, fn func(kind, id string)) error
}

// watchChanges applies at once, until Close, the changes other processes
// (replicas, the command line) make in a shared database, as st announces
// them: a revocation recorded elsewhere is applied by rv.Sync (sessions
// closed, tasks cancelled, upstream access ended; the next check sees
// it), and a session ended elsewhere (DELETE on another replica, a
// revocation) is dropped here too. Without announcements (SQLite) the
// gateway still finds revocations by polling (revocationRefresh).
// Clients' decisions are read from the database at each use, and the
// inventory's flags are cached for at most its CacheTTL (1 s): they need
// no announcement.
func (a *App) watchChanges(ctx context.Context, st changeWatcher, rv *inventory.Revoker, g *gateway.Gateway) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	// sync is kicked by announcements; one Sync runs at a time and
	// announcements made while it runs cause one more.
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	err := st.WatchChanges(runCtx, func(kind, id string) {
		switch kind {
		case changeRevocations, changeAll:
			select {
			case kick <- struct{}{}:
			default:
			}
		case changeSessionEnded:
			if g != nil {
				g.DropSession(id)
			}
		}
	})
	if err != nil {
		stop()
		a.logger.Warn("changes made by other processes are not pushed; revocations are polled", "error", err)
		return
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-runCtx.Done():
				return
			case <-kick:
			}
			if rv == nil {
				continue
			}
			results, err := rv.Sync(runCtx)
			if err != nil && runCtx.Err() == nil {
				a.logger.Warn("applying pushed revocations", "error", err)
			}
			for _, res := range results {
				if err := res.Err(); err != nil {
					a.logger.Warn("applying a pushed revocation", "kind", res.Kind, "id", res.ID, "error", err)
				}
			}
		}
	}()
	a.onClose(func() error { stop(); <-done; return nil })
}
