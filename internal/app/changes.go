package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

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

// pushFallbackPoll is how often a gateway whose store pushes changes
// (PostgreSQL) still reads the revocations and the token revocation
// version, in case a push was lost; without pushes (SQLite) it reads them
// every revocationRefresh.
const pushFallbackPoll = 5 * time.Second

// maxPendingEnded bounds the ids of ended sessions waiting to be dropped;
// past it they are forgotten and every session held is checked instead.
const maxPendingEnded = 10_000

// changeWatcher is a store that announces the changes other processes
// make (postgres.Store: LISTEN/NOTIFY on mcpgate_change).
type changeWatcher interface {
	WatchChanges(ctx context.Context, fn func(kind, id string)) error
}

// changeFeed applies, until stop, the changes other processes (replicas,
// the command line) make in a shared database, as the store announces
// them: a revocation recorded elsewhere is applied by the revoker's Sync
// (sessions closed, tasks cancelled, upstream access ended), and a
// session ended elsewhere (a DELETE through another replica, a
// revocation there) is dropped here too. After the store's listening
// connection was made again (changes may have been missed), both are
// checked in full. The revoker and the gateway are given to it once they
// exist; changes announced before are applied then.
type changeFeed struct {
	rv atomic.Pointer[inventory.Revoker]
	g  atomic.Pointer[gateway.Gateway]

	mu     sync.Mutex
	sync   bool                // revocations changed
	all    bool                // anything may have changed
	ended  map[string]struct{} // sessions ended elsewhere
	wake   chan struct{}       // buffered 1: work is pending
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// watchChanges starts a changeFeed on st. It fails when st cannot listen
// (the database is unreachable), so that a replica never runs without
// hearing of the others' changes.
func (a *App) watchChanges(ctx context.Context, st changeWatcher) (*changeFeed, error) {
	f := &changeFeed{ended: make(map[string]struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	if err := st.WatchChanges(runCtx, f.announce); err != nil {
		cancel()
		return nil, err
	}
	go f.run(runCtx, a)
	a.onClose(f.stop)
	return f, nil
}

// announce is the store's callback: it notes the change and returns at
// once.
func (f *changeFeed) announce(kind, id string) {
	f.mu.Lock()
	switch kind {
	case changeRevocations:
		f.sync = true
	case changeAll:
		f.sync, f.all = true, true
	case changeSessionEnded:
		if len(f.ended) < maxPendingEnded {
			f.ended[id] = struct{}{}
		} else {
			f.all = true
		}
	default:
		// changeClients: the authorization server reads a client's
		// status from the database at each use, and the inventory's
		// flags are cached for at most 1 s (inventory.Options.CacheTTL).
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// setTargets gives the feed the revoker and the gateway (either may be
// nil) and applies what was announced meanwhile.
func (f *changeFeed) setTargets(rv *inventory.Revoker, g *gateway.Gateway) {
	if rv != nil {
		f.rv.Store(rv)
	}
	if g != nil {
		f.g.Store(g)
	}
	f.announce(changeAll, "")
}

// run applies the announced changes, one batch at a time, until ctx ends.
func (f *changeFeed) run(ctx context.Context, a *App) {
	defer close(f.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		f.mu.Lock()
		doSync, all, ended := f.sync, f.all, f.ended
		f.sync, f.all, f.ended = false, false, make(map[string]struct{})
		f.mu.Unlock()
		if g := f.g.Load(); g != nil {
			for id := range ended {
				g.DropSession(id)
			}
			if all {
				g.DropEndedSessions(ctx)
			}
		}
		if rv := f.rv.Load(); rv != nil && doSync {
			results, err := rv.Sync(ctx)
			if err != nil && ctx.Err() == nil {
				a.logger.Warn("applying pushed revocations", "error", err)
			}
			for _, res := range results {
				if err := res.Err(); err != nil {
					a.logger.Warn("applying a pushed revocation", "kind", res.Kind, "id", res.ID, "error", err)
				}
			}
		}
	}
}

// stop ends the feed and waits for it.
func (f *changeFeed) stop() error {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
	return nil
}
