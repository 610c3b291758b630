package gateway

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
)

// The resolve and forward functions of the client request table
// (admission.go), one pair per kind of request, in the order of the
// table.

// resolveList prepares a list of one kind of catalogue item.
func resolveList(k itemKind) func(*Gateway, context.Context, *call) error {
	return func(g *Gateway, ctx context.Context, c *call) error {
		cursor, err := c.str("cursor")
		if err != nil {
			return err
		}
		c.name = cursor
		c.res = policy.Resource{Kind: kindInfo[k].policyKind}
		c.rt.name = strconv.Itoa(int(k)) // the kind, for forwardList
		return nil
	}
}

// forwardList answers a list request from the merged catalogue, a page at
// a time, leaving out what the principal may not see.
func forwardList(g *Gateway, ctx context.Context, c *call) (any, error) {
	n, _ := strconv.Atoi(c.rt.name)
	k := itemKind(n)
	cat, err := g.catalog(ctx, c.ds.principal)
	if err != nil {
		return nil, err
	}
	items := cat.items[k]
	hidden := 0
	if g.opts.Policy != nil {
		items = make([]jsontext.Value, 0, len(cat.items[k]))
		for i, raw := range cat.items[k] {
			if g.visible(c.ds, k, cat.iroute[k][i]) {
				items = append(items, raw)
			} else {
				hidden++
			}
		}
	}
	start, err := decodeCursor(c.name, len(items))
	if err != nil {
		return nil, err
	}
	end := min(start+g.opts.PageSize, len(items))
	var page jsonraw.Object
	if err := page.Set(kindInfo[k].listField, jsonraw.JoinArray(items[start:end])); err != nil {
		return nil, err
	}
	if end < len(items) {
		if err := page.SetString("nextCursor", encodeCursor(end)); err != nil {
			return nil, err
		}
	}
	return &listResult{page: page.Bytes(), shown: len(items), hidden: hidden}, nil
}

func encodeCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(n)))
}

func decodeCursor(cursor string, max int) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o:"))
	if err != nil || err2 != nil || n < 0 || n > max {
		return 0, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid cursor")
	}
	return n, nil
}

// resolveNamed resolves tools/call and prompts/get: the (prefixed) name
// names an item of the principal's catalogue, which must be visible to
// the principal and, for tools, trusted.
func resolveNamed(k itemKind) func(*Gateway, context.Context, *call) error {
	return func(g *Gateway, ctx context.Context, c *call) error {
		name, err := c.str("name")
		if err != nil {
			return err
		}
		if name == "" {
			return invalidParams("%s: name is required", c.method)
		}
		c.name = name
		if args, ok := c.p.Get("arguments"); ok {
			if args.Kind() != '{' {
				return invalidParams("%s: arguments must be an object", c.method)
			}
			c.args = args
		}
		rt, err := g.route(ctx, c.ds.principal, k, name)
		if err != nil {
			return g.upstreamAuthRequired(ctx, c.ds.principal, k, name, err)
		}
		c.rt, c.up = rt, rt.up
		c.res = policy.Resource{Kind: kindInfo[k].policyKind, Upstream: rt.up.cfg.Name, Name: rt.name}
		// A principal acts only on what it may see.
		c.seen = append(c.seen, seenCheck{kindInfo[k].listMethod, c.res})
		if k == kindTool {
			if err := g.toolBlocked(ctx, rt.up.cfg.Name, rt.name); err != nil {
				return refused(outcomeBlocked, err)
			}
		}
		return g.resolveTaskCall(ctx, c)
	}
}

// forwardNamed sends tools/call or prompts/get to the upstream of the
// item, under its own name there.
func forwardNamed(g *Gateway, ctx context.Context, c *call) (any, error) {
	ss, principal, rt := c.ds.ss, c.ds.principal, c.rt
	cs, err := rt.up.session(ctx, principal)
	if err != nil {
		return nil, upstreamError(rt.up, err)
	}
	if rt.name != c.name {
		if err := c.p.SetString("name", rt.name); err != nil {
			return nil, err
		}
	}
	var isTask bool
	if c.method == mcp.MethodToolsCall {
		_, isTask = c.p.Get("task")
	}
	if isTask {
		if err := g.capTaskTTL(c.p); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid task params: %v", err)
		}
		defer g.creations.begin(rt.up)()
		ctx = withTaskTool(ctx, c.name)
	}
	if c.ds.modern && isTask && isModernSession(cs) {
		return g.modernUpstreamTask(ctx, c, cs, rt.up) // modern_upstream_tasks.go
	}
	if c.ds.modern && !isTask {
		return g.modernCall(ctx, c, cs, rt.up, c.encode()) // modern_mrtr.go
	}
	res, err := g.call(ctx, ss, cs, rt.up, c.method, c.encode())
	if err != nil {
		return nil, err
	}
	if isTask {
		out, err := g.mapCreatedTask(ctx, rt.up, c.ds, res)
		if c.ds.modern && err == nil {
			return modernCreatedTask(out) // modern_tasks.go
		}
		return out, err
	}
	return res, nil
}

// resolveResource resolves resources/read, resources/subscribe and
// resources/unsubscribe: the URI must be listed by an upstream, or match
// one of its templates, and be visible to the principal.
func resolveResource(g *Gateway, ctx context.Context, c *call) error {
	uri, err := c.str("uri")
	if err != nil {
		return err
	}
	if uri == "" {
		return invalidParams("%s: uri is required", c.method)
	}
	c.name = uri
	c.res = policy.Resource{Kind: policy.KindResource, Name: uri}
	u, tmpl, err := g.routeURI(ctx, c.ds.principal, uri)
	if err != nil {
		return g.upstreamAuthRequired(ctx, c.ds.principal, kindResource, uri, err)
	}
	c.up = u
	c.res.Upstream = u.cfg.Name
	c.seen = append(c.seen, seenCheck{mcp.MethodResourcesList, c.res})
	if tmpl != "" {
		c.seen = append(c.seen, seenCheck{mcp.MethodResourcesTemplatesList, policy.Resource{Kind: policy.KindResource, Upstream: u.cfg.Name, Name: tmpl}})
	}
	return nil
}

// forwardResource sends a resource request to the upstream of the URI,
// and keeps track of the session's subscriptions.
func forwardResource(g *Gateway, ctx context.Context, c *call) (any, error) {
	cs, err := c.up.session(ctx, c.ds.principal)
	if err != nil {
		return nil, upstreamError(c.up, err)
	}
	if c.ds.modern {
		return g.modernCall(ctx, c, cs, c.up, c.encode()) // modern_mrtr.go
	}
	res, err := g.call(ctx, c.ds.ss, cs, c.up, c.method, c.encode())
	if err != nil {
		return nil, err
	}
	switch c.method {
	case mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsubscribe:
		g.sessions.subscribe(c.ds, c.name, c.method == mcp.MethodResourcesSubscribe)
	}
	return res, nil
}

// resolveCompletion resolves completion/complete by its reference: a
// prompt or a resource template the principal may see.
func resolveCompletion(g *Gateway, ctx context.Context, c *call) error {
	rawRef, _ := c.p.Get("ref")
	ref, err := jsonraw.Parse(rawRef)
	if err != nil || rawRef.Kind() != '{' {
		return invalidParams("completion/complete: ref is required")
	}
	c.args = c.params
	str := func(name string) string { s, _, _ := ref.String(name); return s }
	typ := str("type")
	switch typ {
	case "ref/prompt":
		name := str("name")
		c.name = name
		rt, err := g.route(ctx, c.ds.principal, kindPrompt, name)
		if err != nil {
			return err
		}
		c.up, c.rt = rt.up, rt
		if rt.name != name {
			if err := ref.SetString("name", rt.name); err != nil {
				return invalidParams("completion/complete: %v", err)
			}
			if err := c.p.Set("ref", ref.Bytes()); err != nil {
				return invalidParams("completion/complete: %v", err)
			}
		}
		c.res = policy.Resource{Kind: policy.KindCompletion, Upstream: rt.up.cfg.Name, Name: rt.name}
		c.seen = append(c.seen, seenCheck{mcp.MethodPromptsList, policy.Resource{Kind: policy.KindPrompt, Upstream: rt.up.cfg.Name, Name: rt.name}})
	case "ref/resource":
		uri := str("uri")
		c.name = uri
		u, err := g.routeTemplate(ctx, c.ds.principal, uri)
		if err != nil {
			return err
		}
		c.up = u
		c.res = policy.Resource{Kind: policy.KindCompletion, Upstream: u.cfg.Name, Name: uri}
		c.seen = append(c.seen, seenCheck{mcp.MethodResourcesTemplatesList, policy.Resource{Kind: policy.KindResource, Upstream: u.cfg.Name, Name: uri}})
	default:
		return invalidParams("completion/complete: unknown reference type %q", typ)
	}
	return nil
}

func forwardCompletion(g *Gateway, ctx context.Context, c *call) (any, error) {
	cs, err := c.up.session(ctx, c.ds.principal)
	if err != nil {
		return nil, upstreamError(c.up, err)
	}
	return g.call(ctx, c.ds.ss, cs, c.up, mcp.MethodCompletionComplete, c.encode())
}

// resolveSetLevel checks logging/setLevel; policy decides on the
// upstreams it reaches (resource kind "upstream").
func resolveSetLevel(g *Gateway, ctx context.Context, c *call) error {
	level, _ := c.str("level")
	if !mcp.LoggingLevel(level).IsValid() {
		return invalidParams("unknown logging level %q", level)
	}
	c.name = level
	// The session-wide decision is on Upstream::"*"; each upstream is then
	// decided on its own (forwardSetLevel).
	c.res = policy.Resource{Kind: policy.KindUpstream, Upstream: "*", Name: "*"}
	return nil
}

// forwardSetLevel passes logging/setLevel on to every upstream of the
// principal that policy lets it reach.
func forwardSetLevel(g *Gateway, ctx context.Context, c *call) (any, error) {
	var wg sync.WaitGroup
	for _, u := range g.upstreamList() {
		if caps := u.capabilities(); caps != nil && caps.Logging == nil {
			continue
		}
		if g.opts.Policy != nil && !g.decide(c.ds, c.method, policy.Resource{Kind: policy.KindUpstream, Upstream: u.cfg.Name, Name: u.cfg.Name}, nil).Allow {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := u.session(ctx, c.ds.principal)
			if err != nil {
				return
			}
			if _, err := cs.CallRaw(ctx, mcp.MethodLoggingSetLevel, c.params); err != nil {
				u.logger.Debug("passing on logging/setLevel", "error", err)
			}
		}()
	}
	wg.Wait()
	return nil, nil
}

// resolveTask resolves tasks/get, tasks/result and tasks/cancel: the task
// must be one the principal created and may see. An unknown task and
// another principal's task get the same answer.
func resolveTask(g *Gateway, ctx context.Context, c *call) error {
	gid, err := c.str("taskId")
	if err != nil {
		return err
	}
	if gid == "" {
		return invalidParams("%s: taskId is required", c.method)
	}
	c.name = gid
	c.res = policy.Resource{Kind: policy.KindTask, Name: gid}
	rec, u, ok := g.taskFor(ctx, c.ds.principal, gid)
	if !ok {
		return errUnknownTask(gid)
	}
	c.task, c.up = rec, u
	c.res.Upstream = u.cfg.Name
	c.seen = append(c.seen, seenCheck{mcp.MethodTasksList, c.res})
	return nil
}

func forwardTask(g *Gateway, ctx context.Context, c *call) (any, error) {
	if c.task.Held() {
		return g.heldTaskRequest(ctx, c) // taskapproval.go
	}
	return g.forwardOwnTask(ctx, c.ds.ss, c.ds.principal, c.method, c.p, c.name, c.task, c.up)
}

// resolveTaskList checks tasks/list; only the first page exists.
func resolveTaskList(g *Gateway, ctx context.Context, c *call) error {
	if cur, err := c.str("cursor"); err != nil {
		return err
	} else if cur != "" {
		return invalidParams("invalid cursor")
	}
	c.res = policy.Resource{Kind: policy.KindTask}
	return nil
}

func forwardTaskList(g *Gateway, ctx context.Context, c *call) (any, error) {
	return g.listTasks(ctx, c.ds)
}
