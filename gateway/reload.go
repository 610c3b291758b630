package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// upstreamSet is the set of upstreams in force. It is never changed once
// published: a reload publishes a new one (Gateway.ups), so that readers
// take a consistent snapshot without a lock.
type upstreamSet struct {
	list   []*upstream // in the order of the configuration
	byName map[string]*upstream
}

// upstreamList returns the upstreams in force, in configuration order
// (none for a Gateway not made by New). The slice is shared: do not
// change it.
func (g *Gateway) upstreamList() []*upstream {
	if set := g.ups.Load(); set != nil {
		return set.list
	}
	return nil
}

// upstreamNamed returns the upstream in force with the name, or nil.
func (g *Gateway) upstreamNamed(name string) *upstream {
	if set := g.ups.Load(); set != nil {
		return set.byName[name]
	}
	return nil
}

// startUpstream brings u up in the background: its start-up session is
// supervised (health.go) unless its sessions are per-user.
func (g *Gateway) startUpstream(u *upstream) {
	if u.perUser() {
		// Sessions open for each user, with the user's consent.
		g.reportUpstreamState(u.cfg.Name, "per-user", nil)
		return
	}
	u.firstDone = make(chan struct{})
	u.primary.mu.Lock()
	u.primary.supervised = true
	u.primary.mu.Unlock()
	g.supervisors.Add(1)
	go g.supervise(u)
}

// UpstreamChanges is what ApplyUpstreams changed, by upstream name.
type UpstreamChanges struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// Empty reports whether nothing changed.
func (c UpstreamChanges) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed) == 0
}

// ErrClosed is the error of a reload of a gateway that is closed.
var ErrClosed = errors.New("gateway: closed")

// ApplyUpstreams replaces the upstream set with ups (a reloaded
// configuration's upstreams, which must have passed config.Validate with
// the rest of it). An upstream that is new is started in the background
// and joins the catalogue when ready; one no longer configured has its
// sessions closed (calls in flight on it fail) and leaves the catalogue;
// one whose configuration changed is replaced: its sessions are closed and
// the new one is started. Upstreams whose configuration is the same keep
// their sessions, untouched. When anything changed, every client is sent
// list_changed notifications. Call it after Start.
func (g *Gateway) ApplyUpstreams(ctx context.Context, ups []config.Upstream) (UpstreamChanges, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	select {
	case <-g.done:
		return UpstreamChanges{}, ErrClosed
	default:
	}
	old := g.ups.Load()
	if old == nil {
		old = &upstreamSet{}
	}
	next := &upstreamSet{byName: make(map[string]*upstream, len(ups))}
	var ch UpstreamChanges
	var started, stopped []*upstream
	for _, uc := range ups {
		u := old.byName[uc.Name]
		switch {
		case u == nil:
			ch.Added = append(ch.Added, uc.Name)
			u = newUpstream(g, uc)
			started = append(started, u)
		case !reflect.DeepEqual(u.cfg, uc):
			ch.Changed = append(ch.Changed, uc.Name)
			stopped = append(stopped, u)
			u = newUpstream(g, uc)
			started = append(started, u)
		}
		next.list = append(next.list, u)
		next.byName[uc.Name] = u
	}
	for _, u := range old.list {
		if next.byName[u.cfg.Name] == nil {
			ch.Removed = append(ch.Removed, u.cfg.Name)
			stopped = append(stopped, u)
		}
	}
	if ch.Empty() {
		return ch, nil
	}
	for _, u := range started {
		if u.perUser() && !g.perUserAuth {
			return UpstreamChanges{}, fmt.Errorf("upstream %s: %s credentials need the per-user setup the gateway makes at start, and it started with no such upstream: restart it to add one", u.cfg.Name, u.cfg.Credentials.Type)
		}
	}
	// The new upstreams are made ready to be waited for before anyone can
	// find them; then the set is published and the catalogues dropped.
	for _, u := range started {
		g.startUpstream(u)
	}
	g.ups.Store(next)
	g.mu.Lock()
	clear(g.catalogs)
	g.catalogGen++
	g.mu.Unlock()
	for _, u := range stopped {
		u.retire()
	}
	g.recordUpstreams(ctx)
	g.statesChanged()
	// Clients are told of what left; what joins is announced when it is
	// ready (supervise).
	if len(stopped) > 0 {
		g.notifyListsChanged(stopped)
	}
	return ch, nil
}

// retire ends an upstream that left the set: its supervisor stops and
// every session with it is closed.
func (u *upstream) retire() {
	u.mu.Lock()
	sessions := slices.Collect(func(yield func(*upstreamSession) bool) {
		for _, us := range u.sessions {
			if !yield(us) {
				return
			}
		}
	})
	clear(u.sessions)
	// Closed under u.mu, so that no new session is made after the clear
	// (sessionAs checks it under u.mu).
	u.goneOnce.Do(func() { close(u.gone) })
	u.mu.Unlock()
	for _, us := range sessions {
		go us.close()
	}
}

// notifyListsChanged tells every client that the tool list changed, and
// the prompt and resource lists when one of the upstreams had them.
func (g *Gateway) notifyListsChanged(ups []*upstream) {
	var prompts, resources bool
	for _, u := range ups {
		if c := u.capabilities(); c != nil {
			prompts = prompts || c.Prompts != nil
			resources = resources || c.Resources != nil
		}
	}
	methods := []string{mcp.NotificationToolsListChanged}
	if prompts {
		methods = append(methods, mcp.NotificationPromptsListChanged)
	}
	if resources {
		methods = append(methods, mcp.NotificationResourcesListChanged)
	}
	for _, ss := range g.server.Sessions() {
		for _, m := range methods {
			g.notify(context.Background(), ss, m, jsontext.Value("{}"))
		}
	}
	g.listsChangedModern(methods...) // modern_listen.go
}

// SetInflightBounds changes server.max_inflight and
// server.max_inflight_per_principal (values as config.Config.Limits
// returns them: negative is no bound). Requests in progress finish.
func (g *Gateway) SetInflightBounds(max, perPrincipal int) {
	g.inflight.setBounds(max, perPrincipal)
}
