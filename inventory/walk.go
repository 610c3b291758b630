package inventory

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Node is one step of a walk through the graph (Graph.Walk): an entity,
// a line that sums it up, the entity itself, and what it leads to.
type Node struct {
	// Kind is user, client, grant, session, upstream, credential, tool or
	// task; ID names the entity within its kind.
	Kind, ID string
	// Summary describes it in one line.
	Summary string
	// Item is the entity: a User, Client, Grant, Session, Upstream,
	// Credential (nil for the gateway's shared one), Tool or Task.
	Item any `json:",omitempty"`
	// Children are the next steps of the path.
	Children []*Node `json:",omitempty"`
}

// WalkKinds are the kinds Graph.Walk starts from.
var WalkKinds = []string{"user", "client", "session", "upstream", "tool"}

// Walk follows the execution paths through one entity: user → clients →
// grants and sessions → upstreams each session can reach → the
// credential the gateway uses there → the tools reachable with it, and
// the tasks of each principal. kind is one of WalkKinds; id is a user
// name or token subject, a client_id, a session id, an upstream name, or
// "<upstream>/<tool>".
//
// What a session can reach is worked out from the records: every
// configured upstream, except a per-user one the principal holds no
// credential for (it must consent first), and none for a revoked
// principal; the tools reachable are those approved and still listed.
// Policy may narrow it further, per call.
func (g *Graph) Walk(kind, id string) (*Node, error) {
	switch kind {
	case "user":
		u := g.user(id)
		if u == nil {
			return nil, fmt.Errorf("no user %q in the inventory", id)
		}
		return g.walkPrincipal(id, "", ""), nil
	case "client":
		c := g.client(id)
		if c == nil {
			return nil, fmt.Errorf("no client %q in the inventory", id)
		}
		return g.walkClient(c), nil
	case "session":
		for _, s := range g.Sessions {
			if s.ID == id {
				return g.walkPrincipal(s.Principal, s.ClientID, s.ID), nil
			}
		}
		return nil, fmt.Errorf("no live session %q in the inventory", id)
	case "upstream":
		u := g.upstream(id)
		if u == nil {
			return nil, fmt.Errorf("no upstream %q in the inventory", id)
		}
		return g.walkUpstream(u), nil
	case "tool":
		up, name, ok := strings.Cut(id, "/")
		if u := g.upstream(up); ok && u != nil {
			for i := range u.Tools {
				if u.Tools[i].Name == name {
					return g.walkTool(u, &u.Tools[i]), nil
				}
			}
		}
		return nil, fmt.Errorf("no tool %q in the inventory (want UPSTREAM/TOOL)", id)
	}
	return nil, fmt.Errorf("unknown kind %q (want one of %s)", kind, strings.Join(WalkKinds, ", "))
}

func (g *Graph) user(name string) *User {
	for i := range g.Users {
		if g.Users[i].Name == name {
			return &g.Users[i]
		}
	}
	return nil
}

func (g *Graph) client(id string) *Client {
	for i := range g.Clients {
		if g.Clients[i].ID == id {
			return &g.Clients[i]
		}
	}
	return nil
}

func (g *Graph) upstream(name string) *Upstream {
	for i := range g.Upstreams {
		if g.Upstreams[i].Name == name {
			return &g.Upstreams[i]
		}
	}
	return nil
}

// revokedPrincipal reports a revoked user or client.
func (g *Graph) revokedPrincipal(p string) bool {
	if u := g.user(p); u != nil && u.Revoked {
		return true
	}
	if c := g.client(p); c != nil && c.Revoked {
		return true
	}
	return false
}

// walkPrincipal is the tree of a principal: its clients (only onlyClient
// if set), with their grants, sessions (only onlySession if set) and
// tasks, and its per-user credentials no session uses.
func (g *Graph) walkPrincipal(p, onlyClient, onlySession string) *Node {
	root := g.principalNode(p)
	var clients []string
	add := func(c string) {
		if (onlyClient == "" || c == onlyClient) && !slices.Contains(clients, c) {
			clients = append(clients, c)
		}
	}
	for _, s := range g.Sessions {
		if s.Principal == p && (onlySession == "" || s.ID == onlySession) {
			add(s.ClientID)
		}
	}
	if onlySession == "" {
		for _, gr := range g.Grants {
			if gr.User == p || (gr.User == "" && gr.Client == p) {
				add(gr.Client)
			}
		}
		for _, t := range g.Tasks {
			if t.Owner == p {
				add(t.ClientID)
			}
		}
	}
	slices.Sort(clients)
	for _, c := range clients {
		var n *Node
		if c == "" || c == p {
			n = root // no OAuth client (auth off), or a machine client acting as itself
		} else {
			n = g.clientNode(c)
			root.Children = append(root.Children, n)
		}
		if onlySession == "" {
			for i := range g.Grants {
				gr := &g.Grants[i]
				if gr.Client == c && (gr.User == p || (gr.User == "" && gr.Client == p)) {
					n.Children = append(n.Children, grantNode(gr))
				}
			}
		}
		for i := range g.Sessions {
			s := &g.Sessions[i]
			if s.Principal == p && s.ClientID == c && (onlySession == "" || s.ID == onlySession) {
				n.Children = append(n.Children, g.sessionNode(s, true))
			}
		}
		if onlySession == "" {
			for i := range g.Tasks {
				if t := &g.Tasks[i]; t.Owner == p && t.ClientID == c {
					n.Children = append(n.Children, taskNode(t))
				}
			}
		}
	}
	if onlySession == "" {
		// Per-user credentials held, whether or not a session uses them.
		for i := range g.Credentials {
			c := &g.Credentials[i]
			if c.Principal != p {
				continue
			}
			un := &Node{Kind: "upstream", ID: c.Upstream, Summary: "per-user credential held"}
			if u := g.upstream(c.Upstream); u != nil {
				un.Summary = upstreamSummary(u) + "; per-user credential held"
			}
			un.Children = append(un.Children, credentialNode(c))
			root.Children = append(root.Children, un)
		}
	}
	return root
}

func (g *Graph) principalNode(p string) *Node {
	if u := g.user(p); u != nil {
		var parts []string
		if u.Local {
			parts = append(parts, "local account since "+day(u.CreatedAt))
		} else {
			parts = append(parts, "token subject")
		}
		if u.IdP != "" {
			parts = append(parts, "vouched for by "+u.IdP)
		}
		if u.Revoked {
			parts = append(parts, "REVOKED: reaches nothing")
		}
		return &Node{Kind: "user", ID: p, Summary: strings.Join(parts, "; "), Item: u}
	}
	n := g.clientNode(p)
	n.Summary += "; acts as itself (machine-to-machine)"
	return n
}

func (g *Graph) clientNode(id string) *Node {
	c := g.client(id)
	if c == nil {
		return &Node{Kind: "client", ID: id, Summary: "not registered"}
	}
	parts := []string{"registered " + or(c.RegistrationMethod, "-")}
	if c.MetadataDigest != "" {
		parts = append(parts, "metadata sha256 "+shortDigest(c.MetadataDigest))
	}
	if !c.FirstSeen.IsZero() {
		parts = append(parts, "seen "+day(c.FirstSeen)+" … "+day(c.LastSeen))
	}
	parts = append(parts, ClientStatus(c))
	return &Node{Kind: "client", ID: id, Summary: strings.Join(parts, "; "), Item: c}
}

// ClientStatus sums up a client's standing: revoked, refused, pending,
// changed since approval, or approved.
func ClientStatus(c *Client) string {
	switch {
	case c.Revoked:
		return "REVOKED"
	case c.Admission == "refused":
		return "REFUSED"
	case c.Admission == "pending":
		return "PENDING approval"
	case c.Flagged:
		return "CHANGED since approval"
	}
	return "approved"
}

func grantNode(gr *Grant) *Node {
	s := fmt.Sprintf("scopes %q; %d access token(s), %d refresh token(s); expires %s", strings.Join(gr.Scopes, " "), len(gr.TokenIDs), gr.RefreshTokens, stamp(gr.ExpiresAt))
	if gr.Revoked {
		s += "; REVOKED"
	}
	return &Node{Kind: "grant", ID: gr.ID, Summary: s, Item: gr}
}

// sessionNode is a session; with reach, the upstreams it can reach below
// it.
func (g *Graph) sessionNode(s *Session, reach bool) *Node {
	sum := or(s.Transport, "transport unknown")
	if s.SourceAddr != "" {
		sum += " from " + s.SourceAddr
	}
	sum += "; since " + stamp(s.Created) + ", last seen " + stamp(s.LastSeen)
	if !reach {
		who := "of " + s.Principal
		if s.ClientID != "" {
			who += " via " + s.ClientID
		}
		sum = who + "; " + sum
	}
	n := &Node{Kind: "session", ID: s.ID, Summary: sum, Item: s}
	if reach {
		n.Children = g.reach(s.Principal)
	}
	return n
}

// reach returns the upstreams a principal's session can reach, each with
// the credential used and the tools reachable.
func (g *Graph) reach(p string) []*Node {
	if g.revokedPrincipal(p) {
		return nil
	}
	var out []*Node
	for i := range g.Upstreams {
		u := &g.Upstreams[i]
		if !u.Configured {
			continue
		}
		un := &Node{Kind: "upstream", ID: u.Name, Summary: upstreamSummary(u), Item: u}
		var cn *Node
		if u.PerUser {
			for j := range g.Credentials {
				if c := &g.Credentials[j]; c.Principal == p && c.Upstream == u.Name {
					cn = credentialNode(c)
				}
			}
			if cn == nil {
				un.Summary += "; per-user: no credential for " + p + " yet (not reachable until the user consents)"
				out = append(out, un)
				continue
			}
		} else {
			cn = &Node{Kind: "credential", ID: "gateway:" + or(u.CredentialType, "none"), Summary: "the gateway's own credential, shared by every user"}
		}
		cn.Children = toolNodes(u)
		un.Children = append(un.Children, cn)
		out = append(out, un)
	}
	return out
}

func upstreamSummary(u *Upstream) string {
	var parts []string
	switch {
	case !u.Configured:
		parts = append(parts, "not in the configuration a gateway last started with")
	case len(u.Command) > 0:
		parts = append(parts, u.Transport+": "+strings.Join(u.Command, " "))
	default:
		parts = append(parts, u.Transport+": "+u.URL)
	}
	if u.Configured {
		c := "credential " + or(u.CredentialType, "none")
		if u.PerUser {
			c += " (per user)"
		}
		parts = append(parts, c)
	}
	parts = append(parts, "owner "+or(u.Owner, "-"))
	return strings.Join(parts, "; ")
}

func credentialNode(c *Credential) *Node {
	s := "the user's own credential"
	if c.Scope != "" {
		s += "; scope " + c.Scope
	}
	if !c.ExpiresAt.IsZero() {
		s += "; expires " + stamp(c.ExpiresAt)
	}
	return &Node{Kind: "credential", ID: "user:" + or(c.Kind, "oauth_user"), Summary: s, Item: c}
}

// toolNodes are the tools of u a session reaches: approved ones, and
// changed ones (listed with their approved definition, or as they are
// when changed tools are not blocked). Pending and removed tools are not
// listed to clients.
func toolNodes(u *Upstream) []*Node {
	var out []*Node
	for i := range u.Tools {
		t := &u.Tools[i]
		if t.State == "pending" || t.State == "removed" {
			continue
		}
		out = append(out, toolNode(t))
	}
	return out
}

func toolNode(t *Tool) *Node {
	s := "sha256 " + shortDigest(t.Digest) + "; " + t.State
	if t.State == "changed" {
		s += " since " + stamp(t.ChangedAt) + " (approved sha256 " + shortDigest(t.ApprovedDigest) + ")"
	}
	if t.ApprovedBy != "" {
		s += "; approved by " + t.ApprovedBy + " at " + stamp(t.ApprovedAt)
	} else if t.ApprovedDigest != "" {
		s += "; approved on first sight"
	}
	return &Node{Kind: "tool", ID: t.Name, Summary: s, Item: t}
}

func taskNode(t *Task) *Node {
	s := "on " + or(t.Upstream, "-") + "; " + or(t.Status, "-") + "; created " + stamp(t.Created)
	if t.TTLSeconds > 0 {
		s += fmt.Sprintf("; ttl %s", time.Duration(t.TTLSeconds)*time.Second)
	}
	return &Node{Kind: "task", ID: t.ID, Summary: s, Item: t}
}

// walkClient is a client's tree: its grants, then each principal using
// it with the sessions through it.
func (g *Graph) walkClient(c *Client) *Node {
	root := g.clientNode(c.ID)
	var principals []string
	for _, s := range g.Sessions {
		if s.ClientID == c.ID && !slices.Contains(principals, s.Principal) {
			principals = append(principals, s.Principal)
		}
	}
	for _, gr := range g.Grants {
		p := gr.User
		if p == "" {
			p = gr.Client
		}
		if gr.Client == c.ID && !slices.Contains(principals, p) {
			principals = append(principals, p)
		}
	}
	slices.Sort(principals)
	for _, p := range principals {
		sub := g.walkPrincipal(p, c.ID, "")
		if p == c.ID {
			root.Children = append(root.Children, sub.Children...)
			continue
		}
		// user → (this client) → …: keep the client's children under the user.
		un := g.principalNode(p)
		for _, ch := range sub.Children {
			if ch.Kind == "client" && ch.ID == c.ID {
				un.Children = append(un.Children, ch.Children...)
			}
		}
		root.Children = append(root.Children, un)
	}
	return root
}

// walkUpstream is an upstream's tree: the credentials used there and the
// tools reachable with them, the live sessions that reach it, and the
// tasks running on it.
func (g *Graph) walkUpstream(u *Upstream) *Node {
	root := &Node{Kind: "upstream", ID: u.Name, Summary: upstreamSummary(u), Item: u}
	if u.Configured && !u.PerUser {
		cn := &Node{Kind: "credential", ID: "gateway:" + or(u.CredentialType, "none"), Summary: "the gateway's own credential, shared by every user"}
		cn.Children = toolNodes(u)
		root.Children = append(root.Children, cn)
	}
	for i := range g.Credentials {
		if c := &g.Credentials[i]; c.Upstream == u.Name {
			cn := credentialNode(c)
			cn.Summary = "of " + c.Principal + "; " + cn.Summary
			root.Children = append(root.Children, cn)
		}
	}
	if u.PerUser {
		root.Children = append(root.Children, &Node{Kind: "tool", ID: "*", Summary: fmt.Sprintf("%d tool(s) reachable with a per-user credential", len(toolNodes(u))), Children: toolNodes(u)})
	}
	root.Children = append(root.Children, g.reachedBy(u)...)
	for i := range g.Tasks {
		if t := &g.Tasks[i]; t.Upstream == u.Name {
			n := taskNode(t)
			n.Summary = "of " + t.Owner + "; " + n.Summary
			root.Children = append(root.Children, n)
		}
	}
	return root
}

// reachedBy returns the live sessions that can reach u.
func (g *Graph) reachedBy(u *Upstream) []*Node {
	var out []*Node
	for i := range g.Sessions {
		s := &g.Sessions[i]
		for _, n := range g.reach(s.Principal) {
			if n.ID == u.Name && len(n.Children) > 0 {
				out = append(out, g.sessionNode(s, false))
				break
			}
		}
	}
	return out
}

// walkTool is a tool's tree: its upstream, and the live sessions that
// reach it.
func (g *Graph) walkTool(u *Upstream, t *Tool) *Node {
	root := toolNode(t)
	root.ID = u.Name + "/" + t.Name
	root.Children = append(root.Children, &Node{Kind: "upstream", ID: u.Name, Summary: upstreamSummary(u), Item: u})
	if t.State != "pending" && t.State != "removed" {
		root.Children = append(root.Children, g.reachedBy(u)...)
	}
	return root
}

// Render writes the tree as indented text, one node a line.
func (n *Node) Render(b *strings.Builder) { n.render(b, 0) }

func (n *Node) render(b *strings.Builder, depth int) {
	fmt.Fprintf(b, "%s%s %s", strings.Repeat("  ", depth), n.Kind, n.ID)
	if n.Summary != "" {
		b.WriteString(" — " + n.Summary)
	}
	b.WriteByte('\n')
	for _, c := range n.Children {
		c.render(b, depth+1)
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return or(d, "-")
}
