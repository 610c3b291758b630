package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

type itemKind int

const (
	kindTool itemKind = iota
	kindPrompt
	kindResource
	kindTemplate
)

var kindInfo = [...]struct {
	name       string // for messages
	listMethod string
	listField  string // the result member holding the items
	keyField   string // the member that names an item
	prefixed   bool   // whether the key gets the upstream's prefix
	policyKind string // the resource kind policies see
	callMethod string // the method that acts on one item ("" for templates)
}{
	kindTool:     {"tool", mcp.MethodToolsList, "tools", "name", true, "tool", mcp.MethodToolsCall},
	kindPrompt:   {"prompt", mcp.MethodPromptsList, "prompts", "name", true, "prompt", mcp.MethodPromptsGet},
	kindResource: {"resource", mcp.MethodResourcesList, "resources", "uri", false, "resource", mcp.MethodResourcesRead},
	kindTemplate: {"resource template", mcp.MethodResourcesTemplatesList, "resourceTemplates", "uriTemplate", false, "resource", ""},
}

// route says where a catalogue entry lives.
type route struct {
	up   *upstream
	name string // the upstream's own name (or URI) for the item
}

// catalog is the merged catalogue one principal sees.
type catalog struct {
	items  [4][]jsontext.Value // per kind, renamed raw items, in order
	iroute [4][]route          // per kind, the route of each item
	routes [4]map[string]route // per kind, key as listed -> route
	tmpls  []templateRoute     // resource templates, in order, for URI matching
	failed map[string]error    // upstreams that could not be listed
}

type templateRoute struct {
	template string
	up       *upstream
}

// catalog returns the principal's catalogue, building it if needed. One
// build runs per principal at a time: concurrent callers wait for it
// (their lists, and what listing records, happen once).
func (g *Gateway) catalog(ctx context.Context, principal string) (*catalog, error) {
	for {
		g.mu.Lock()
		if c := g.catalogs[principal]; c != nil {
			g.mu.Unlock()
			return c, nil
		}
		if ch, ok := g.building[principal]; ok {
			g.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		if g.building == nil {
			g.building = make(map[string]chan struct{})
		}
		g.building[principal] = ch
		gen := g.catalogGen
		g.mu.Unlock()

		c := g.buildCatalog(ctx, principal)
		g.mu.Lock()
		delete(g.building, principal)
		// A build that overlapped a change of the upstream set (a
		// reload) may hold upstreams that are gone: it serves its
		// caller once, and is not kept.
		if ctx.Err() == nil && gen == g.catalogGen {
			// A build cut short by its caller's context is incomplete:
			// it is not kept.
			g.catalogs[principal] = c
		}
		g.mu.Unlock()
		close(ch)
		return c, nil
	}
}

// invalidate drops the principal's catalogue after a list change.
func (g *Gateway) invalidate(principal string) {
	g.mu.Lock()
	delete(g.catalogs, principal)
	g.mu.Unlock()
}

// buildCatalog lists everything every upstream offers the principal. An
// upstream that fails is left out (and reported), never failing the rest.
func (g *Gateway) buildCatalog(ctx context.Context, principal string) *catalog {
	type listing struct {
		items [4][]jsontext.Value
		err   error
	}
	// One snapshot of the upstream set for the whole build: a reload may
	// replace it meanwhile (the catalogue it makes is then not kept).
	ups := g.upstreamList()
	results := make([]listing, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Right after start, wait (a bounded time) for an upstream
			// still on its first attempt; one that is not ready is left
			// out at once, for every principal, and joins when it is.
			g.awaitUpstream(ctx, u)
			if err := u.notReady(); err != nil {
				results[i].err = err
				return
			}
			cs, err := u.session(ctx, principal)
			if err != nil {
				results[i].err = err
				return
			}
			caps := cs.InitializeResult().Capabilities
			has := [4]bool{caps.Tools != nil, caps.Prompts != nil, caps.Resources != nil, caps.Resources != nil}
			for k := range kindInfo {
				if !has[k] {
					continue
				}
				items, err := listAll(ctx, cs, itemKind(k))
				if err != nil {
					results[i].err = fmt.Errorf("%s: %w", kindInfo[k].listMethod, err)
					return
				}
				results[i].items[k] = items
			}
			// What upstreams list reaches clients only through tool
			// trust (trust.go).
			g.trustListing(ctx, u, principal, &results[i].items)
		}()
	}
	wg.Wait()

	c := &catalog{failed: make(map[string]error)}
	for k := range c.routes {
		c.routes[k] = make(map[string]route)
	}
	for i, u := range ups {
		if err := results[i].err; err != nil {
			c.failed[u.cfg.Name] = err
			g.logger.Warn("upstream left out of the catalogue", "upstream", u.cfg.Name, "principal", principal, "error", err)
			continue
		}
		for k, items := range results[i].items {
			info := kindInfo[k]
			for _, raw := range items {
				key := stringOf(raw, info.keyField)
				if key == "" {
					g.logger.Warn("upstream listed an item without "+info.keyField, "upstream", u.cfg.Name)
					continue
				}
				listed := key
				if info.prefixed && u.prefix != "" {
					listed = u.prefix + key
					var err error
					if raw, err = withString(raw, info.keyField, listed); err != nil {
						continue
					}
				}
				if prev, dup := c.routes[k][listed]; dup {
					g.reportCollision(fmt.Sprintf("%s %q of upstream %s collides with the one of upstream %s, which is kept; give one of them a prefix",
						info.name, listed, u.cfg.Name, prev.up.cfg.Name))
					continue
				}
				c.routes[k][listed] = route{up: u, name: key}
				c.items[k] = append(c.items[k], raw)
				c.iroute[k] = append(c.iroute[k], route{up: u, name: key})
				if k == int(kindTemplate) {
					c.tmpls = append(c.tmpls, templateRoute{template: key, up: u})
				}
			}
		}
	}
	return c
}

func (g *Gateway) reportCollision(msg string) {
	g.mu.Lock()
	seen := g.collisions[msg]
	g.collisions[msg] = true
	g.mu.Unlock()
	if !seen {
		g.logger.Warn("name collision: " + msg)
	}
}

// Bounds on what one upstream may list (see listAll).
const (
	maxListPages = 1000
	maxListItems = 100000
)

// listAll lists every page of one kind of item from an upstream.
//
// An upstream that paginates forever cannot hold the gateway: at most
// maxListPages pages and maxListItems items are read, and a repeated
// cursor ends the listing; past a bound the upstream is left out of the
// catalogue with an error saying which bound it hit.
func listAll(ctx context.Context, cs *mcp.ClientSession, k itemKind) ([]jsontext.Value, error) {
	info := kindInfo[k]
	var all []jsontext.Value
	cursor := ""
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("upstream listed more than %d pages of %s", maxListPages, info.listField)
		}
		params := jsontext.Value("{}")
		if cursor != "" {
			var err error
			if params, err = withString(nil, "cursor", cursor); err != nil {
				return nil, err
			}
		}
		res, err := cs.CallRaw(ctx, info.listMethod, params)
		if err != nil {
			return nil, err
		}
		items, err := jsonraw.Elements(valueOf(res, info.listField))
		if err != nil {
			return nil, err
		}
		if len(all)+len(items) > maxListItems {
			return nil, fmt.Errorf("upstream listed more than %d %s", maxListItems, info.listField)
		}
		all = append(all, items...)
		next := stringOf(res, "nextCursor")
		if next == "" {
			return all, nil
		}
		if seen[next] {
			return nil, fmt.Errorf("upstream repeated cursor %q", next)
		}
		seen[next] = true
		cursor = next
	}
}

// route finds the upstream of a prefixed tool or prompt name, rebuilding
// the catalogue once if the name is unknown (the upstream may have added
// it since).
func (g *Gateway) route(ctx context.Context, principal string, k itemKind, name string) (route, error) {
	for attempt := 0; attempt < 2; attempt++ {
		c, err := g.catalog(ctx, principal)
		if err != nil {
			return route{}, err
		}
		if rt, ok := c.routes[k][name]; ok {
			return rt, nil
		}
		if attempt == 0 {
			g.invalidate(principal)
		}
	}
	return route{}, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown %s %q", kindInfo[k].name, name)
}

// routeURI finds the upstream that serves a resource URI: the one that
// lists it, else the first whose template matches it (and the template).
func (g *Gateway) routeURI(ctx context.Context, principal, uri string) (*upstream, string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		c, err := g.catalog(ctx, principal)
		if err != nil {
			return nil, "", err
		}
		if rt, ok := c.routes[kindResource][uri]; ok {
			return rt.up, "", nil
		}
		for _, t := range c.tmpls {
			if _, ok, _ := mcp.MatchURITemplate(t.template, uri); ok {
				return t.up, t.template, nil
			}
		}
		if attempt == 0 {
			g.invalidate(principal)
		}
	}
	return nil, "", resourceNotFound(uri)
}

// routeTemplate finds the upstream of a resource template by its URI
// template (completion references name the template).
func (g *Gateway) routeTemplate(ctx context.Context, principal, tmpl string) (*upstream, error) {
	c, err := g.catalog(ctx, principal)
	if err != nil {
		return nil, err
	}
	if rt, ok := c.routes[kindTemplate][tmpl]; ok {
		return rt.up, nil
	}
	if rt, ok := c.routes[kindResource][tmpl]; ok {
		return rt.up, nil
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown resource template %q", tmpl)
}

func resourceNotFound(uri string) *jsonrpc.Error {
	data, _ := withString(nil, "uri", uri)
	return &jsonrpc.Error{Code: jsonrpc.CodeResourceNotFound, Message: "resource not found: " + uri, Data: data}
}
