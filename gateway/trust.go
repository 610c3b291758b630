package gateway

// Tool trust: what the catalogue lets through of what upstreams list.
//
//   - A tool whose definition changed since approval and is blocked
//     (inventory.block_changed_tools) is listed with its approved
//     definition, or withheld when none is stored; calls stay refused.
//   - With inventory.new_tools: approve, a tool first seen after its
//     upstream's baseline is withheld and refused until approved.
//   - An item (tool, prompt, resource, resource template) whose names or
//     descriptions carry control, bidi or other invisible characters, or
//     whose tool or prompt name is longer than maxNameLen, is left out of
//     the catalogue (so it cannot be routed), logged and audited.
//
// Drift and new tools are audited by the inventory's events (once per
// change: the inventory emits them only when the recorded state changes);
// refused items once per item and upstream listing (trustState.refused).

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// maxNameLen is the longest tool or prompt name (in characters, as
// listed, prefix included) the catalogue accepts.
const maxNameLen = 128

// heldRecheck is how often the gateway checks whether tools it withholds
// or lists with their approved definition were approved since (by the
// command line, in another process).
const heldRecheck = 2 * time.Second

// trustState is the gateway's memory for tool trust. Its zero value is
// ready to use.
type trustState struct {
	mu sync.Mutex
	// refused holds, per upstream listing source, the items refused at
	// the last listing, so that each is reported once per change.
	refused map[string]map[string]bool
	// held holds the tools withheld or listed with their approved
	// definition, "upstream\x00tool" -> upstream name.
	held map[string]heldTool
	// watching is set once the recheck loop runs.
	watching bool
}

type heldTool struct{ upstream, tool string }

// checkText reports the first character of s that may not appear in a
// name (name true) or a description or other text (name false) served to
// clients: invalid UTF-8; C0 and C1 control characters and DEL (in text,
// tab, line feed and carriage return are allowed); bidirectional
// formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069) and every other format character (category Cf: U+00AD,
// U+200B–U+200D, U+2060–U+2064, U+FEFF, ...); tag characters
// (U+E0000–U+E007F) and variation selectors U+E0100–U+E01EF. Names must
// moreover be made only of graphic characters and spaces (no line or
// paragraph separators, private-use or unassigned code points), without
// variation selectors or invisible fillers.
func checkText(s string, name bool) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
		}
		if why := forbiddenRune(r, name); why != "" {
			return fmt.Errorf("character %U (%s) at byte %d", r, why, i)
		}
	}
	return nil
}

// forbiddenRune says why r may not appear, or "" if it may.
func forbiddenRune(r rune, name bool) string {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		if name {
			return "control character"
		}
		return ""
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return "control character"
	case r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		return "bidirectional formatting character"
	case r >= 0xe0000 && r <= 0xe007f:
		return "tag character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case r >= 0xe0100 && r <= 0xe01ef:
		return "variation selector"
	}
	if !name {
		return ""
	}
	switch {
	case r >= 0xfe00 && r <= 0xfe0f:
		return "variation selector"
	case r == 0x034f || r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0 || r == 0x2800:
		return "invisible character"
	case r == ' ':
		return ""
	case !unicode.IsGraphic(r):
		return "not a graphic character"
	}
	return ""
}

// nameMembers are the members of an item (and of a prompt's arguments)
// checked as names rather than text.
var nameMembers = map[string]bool{"name": true, "title": true, "uri": true, "uriTemplate": true}

// checkItem checks a listed item as clients would see it: its names
// (name, title, uri, uriTemplate, annotations.title, prompt argument
// names and titles) as names, and every other string and member name
// (descriptions, schemas, annotations, prompt arguments) as text. The
// item's own _meta and icons are not checked (they do not reach the
// model as text). listed is the name as the catalogue lists it; tool and
// prompt names may not be longer than maxNameLen characters.
func checkItem(k itemKind, raw jsontext.Value, listed string) error {
	if (k == kindTool || k == kindPrompt) && utf8.RuneCountInString(listed) > maxNameLen {
		return fmt.Errorf("name is %d characters long, more than %d", utf8.RuneCountInString(listed), maxNameLen)
	}
	var item map[string]any
	if err := json.Unmarshal(raw, &item); err != nil {
		return fmt.Errorf("not a valid JSON object: %w", err)
	}
	for m, v := range item {
		if m == "_meta" || m == "icons" {
			continue
		}
		if err := checkValue(v, m, nameMembers[m] || (k == kindPrompt && m == "arguments")); err != nil {
			return err
		}
	}
	return nil
}

// checkValue walks v (found at path) checking strings and member names.
// names says that the name-like members of objects in v (and, for a
// string, v itself) are names.
func checkValue(v any, path string, names bool) error {
	switch v := v.(type) {
	case string:
		if err := checkText(v, names); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case []any:
		for i, e := range v {
			if err := checkValue(e, path+"["+strconv.Itoa(i)+"]", names); err != nil {
				return err
			}
		}
	case map[string]any:
		for m, e := range v {
			if err := checkText(m, false); err != nil {
				return fmt.Errorf("%s: member name: %w", path, err)
			}
			asName := names && nameMembers[m]
			if path == "annotations" && m == "title" {
				asName = true
			}
			if err := checkValue(e, path+"."+m, asName); err != nil {
				return err
			}
		}
	}
	return nil
}

// trustListing applies tool trust to one upstream's complete listing (per
// kind, as listed by the upstream) for principal, in place: tools go to
// the inventory, blocked changed tools are replaced by their approved
// definition or withheld, pending new tools withheld, and items that fail
// checkItem are removed and reported.
func (g *Gateway) trustListing(ctx context.Context, u *upstream, principal string, lists *[4][]jsontext.Value) {
	if lists[kindTool] != nil {
		lists[kindTool] = g.trustTools(ctx, u, lists[kindTool])
	}
	source := u.cfg.Name
	if u.perUser() {
		source += "\x00" + principal
	}
	refused := make(map[string]bool)
	for k := range lists {
		info := kindInfo[k]
		kept := lists[k][:0:0]
		for _, raw := range lists[k] {
			key := stringOf(raw, info.keyField)
			listed := key
			if info.prefixed {
				listed = u.prefix + key
			}
			err := checkItem(itemKind(k), raw, listed)
			if err == nil {
				kept = append(kept, raw)
				continue
			}
			sum := sha256.Sum256(raw)
			id := fmt.Sprintf("%d\x00%s\x00%x", k, key, sum[:8])
			refused[id] = true
			if !g.trust.wasRefused(source, id) {
				g.reportRefused(u, itemKind(k), key, err)
			}
		}
		if lists[k] != nil {
			lists[k] = kept
		}
	}
	g.trust.mu.Lock()
	if g.trust.refused == nil {
		g.trust.refused = make(map[string]map[string]bool)
	}
	g.trust.refused[source] = refused
	g.trust.mu.Unlock()
}

// wasRefused reports whether the item was refused at the previous listing
// of source.
func (t *trustState) wasRefused(source, id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused[source][id]
}

// refusedAction is the audit action of a refused catalogue item.
func refusedAction(k itemKind) string {
	switch k {
	case kindTool:
		return "tool.refused"
	case kindPrompt:
		return "prompt.refused"
	case kindResource:
		return "resource.refused"
	default:
		return "resource_template.refused"
	}
}

// reportRefused logs and audits an item left out of the catalogue.
func (g *Gateway) reportRefused(u *upstream, k itemKind, key string, why error) {
	shown := strconv.QuoteToASCII(key)
	if len(shown) > 300 {
		shown = shown[:300] + "…"
	}
	msg := fmt.Sprintf("%s %s of upstream %s refused at the catalogue (not listed, not routable): %v", kindInfo[k].name, shown, u.cfg.Name, why)
	u.logger.Warn("catalogue item refused", "kind", kindInfo[k].name, "name", shown, "reason", why.Error())
	r := &audit.Record{Action: refusedAction(k), Upstream: u.cfg.Name, Target: u.cfg.Name + "/" + shown, Outcome: "refused", Error: msg}
	if err := g.auditAppend(context.Background(), r); err != nil {
		g.logger.Error("auditing a refused catalogue item", "error", err)
	}
}

// trustTools records an upstream's tools in the inventory and returns
// what may be listed of them.
func (g *Gateway) trustTools(ctx context.Context, u *upstream, tools []jsontext.Value) []jsontext.Value {
	inv := g.opts.Inventory
	g.recordTools(ctx, u, tools)
	if inv == nil || (!inv.HoldsNewTools() && !inv.BlocksChangedTools()) {
		g.trust.setHeld(u.cfg.Name, nil)
		return tools
	}
	states, err := inv.ToolStates(ctx, u.cfg.Name)
	if err != nil {
		// Fail closed: without the states nothing tells a blocked or
		// pending tool from an approved one.
		u.logger.Warn("tools withheld: reading their approval state", "error", err)
		return []jsontext.Value{}
	}
	out := make([]jsontext.Value, 0, len(tools))
	var held []string
	for _, raw := range tools {
		name := stringOf(raw, "name")
		st, known := states[name]
		switch {
		case inv.HoldsNewTools() && (!known || st.Pending):
			held = append(held, name)
			u.logger.Debug("new tool withheld until approved", "tool", name)
		case known && st.Blocked && st.Changed && st.Approved == nil:
			held = append(held, name)
			u.logger.Debug("changed tool withheld: no approved definition stored", "tool", name)
		case known && st.Blocked && st.Changed:
			held = append(held, name)
			out = append(out, st.Approved)
		default:
			out = append(out, raw)
		}
	}
	g.trust.setHeld(u.cfg.Name, held)
	if len(held) > 0 {
		g.watchHeld()
	}
	return out
}

// setHeld replaces the held tools of an upstream.
func (t *trustState) setHeld(upstream string, tools []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, h := range t.held {
		if h.upstream == upstream {
			delete(t.held, k)
		}
	}
	if len(tools) > 0 && t.held == nil {
		t.held = make(map[string]heldTool)
	}
	for _, name := range tools {
		t.held[upstream+"\x00"+name] = heldTool{upstream, name}
	}
}

// watchHeld starts, once, the loop that notices approvals of held tools
// made outside this gateway (mcpgate inventory approve-tool).
func (g *Gateway) watchHeld() {
	g.trust.mu.Lock()
	start := !g.trust.watching
	g.trust.watching = true
	g.trust.mu.Unlock()
	if !start {
		return
	}
	go func() {
		t := time.NewTicker(heldRecheck)
		defer t.Stop()
		for {
			select {
			case <-g.done:
				return
			case <-t.C:
				g.recheckHeld(context.Background())
			}
		}
	}()
}

// recheckHeld refreshes the catalogues when a held tool is no longer
// blocked (it was approved), and reports whether it did.
func (g *Gateway) recheckHeld(ctx context.Context) bool {
	inv := g.opts.Inventory
	if inv == nil {
		return false
	}
	g.trust.mu.Lock()
	held := make([]heldTool, 0, len(g.trust.held))
	for _, h := range g.trust.held {
		held = append(held, h)
	}
	g.trust.mu.Unlock()
	for _, h := range held {
		if !inv.IsToolBlocked(ctx, h.upstream, h.tool) {
			g.toolTrustChanged()
			return true
		}
	}
	return false
}

// toolTrustChanged drops every catalogue and tells every client its tool
// list changed (a tool was approved).
func (g *Gateway) toolTrustChanged() {
	g.mu.Lock()
	clear(g.catalogs)
	g.mu.Unlock()
	var sessions []*mcp.ServerSession
	for _, ds := range g.sessions.all() {
		sessions = append(sessions, ds.ss)
	}
	g.trust.mu.Lock()
	clear(g.trust.held)
	g.trust.mu.Unlock()
	for _, ss := range sessions {
		g.notify(context.Background(), ss, mcp.NotificationToolsListChanged, jsontext.Value("{}"))
	}
	g.listsChangedModern(mcp.NotificationToolsListChanged) // modern_listen.go
}

// toolAdmitted refuses a call of a tool that the inventory holds: changed
// since approval and blocked (inventory.block_changed_tools), or new and
// awaiting approval (inventory.new_tools: approve). upstream is the
// upstream's configured name and tool its own name for the tool (not the
// prefixed one). The error is a *jsonrpc.Error with CodePolicyDenied.
func (g *Gateway) toolAdmitted(ctx context.Context, upstream, tool string) error {
	inv := g.opts.Inventory
	if inv == nil || !inv.IsToolBlocked(ctx, upstream, tool) {
		return nil
	}
	approve := fmt.Sprintf("mcpgate inventory approve-tool %s %s", upstream, strconv.Quote(tool))
	st, err := inv.ToolState(ctx, upstream, tool)
	var msg string
	switch {
	case errors.Is(err, inventory.ErrToolNotRecorded):
		msg = fmt.Sprintf("tool %q of upstream %s is not in the inventory, and new tools are refused until an administrator approves them", tool, upstream)
	case err != nil:
		msg = fmt.Sprintf("tool %q of upstream %s is refused: its approval state cannot be read", tool, upstream)
	case st.Pending:
		msg = fmt.Sprintf("tool %q of upstream %s is new and refused until an administrator approves it (%s)", tool, upstream, approve)
	default:
		msg = fmt.Sprintf("tool %q of upstream %s changed since it was approved and is blocked until an administrator approves it again (%s)", tool, upstream, approve)
	}
	return &jsonrpc.Error{Code: CodePolicyDenied, Message: msg}
}

// wellFormedTools returns the tools the inventory can record: those with
// a non-empty name, each name once (the first wins, as in the
// catalogue).
func wellFormedTools(tools []jsontext.Value) []jsontext.Value {
	out := make([]jsontext.Value, 0, len(tools))
	seen := make(map[string]bool, len(tools))
	for _, t := range tools {
		name := stringOf(t, "name")
		if strings.TrimSpace(name) == "" || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, t)
	}
	return out
}
