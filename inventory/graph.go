package inventory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// Session is a downstream MCP session with the gateway.
type Session struct {
	// ID is the session id.
	ID string
	// Principal is the user (token subject) the session is bound to.
	Principal string
	// ClientID is the OAuth client the session's token was issued to.
	ClientID string
	// Grant is the token's grant family (or its jti when it has none),
	// TokenID the jti of the token the session was opened with.
	Grant   string
	TokenID string `json:",omitempty"`
	// Transport is how the client is connected: "streamable", "sse" or
	// "stdio" (store.Transport*); SourceAddr the IP address it connected
	// from.
	Transport  string `json:",omitempty"`
	SourceAddr string `json:",omitempty"`
	// Created and LastSeen bound its activity (LastSeen is written at
	// most once a minute).
	Created, LastSeen time.Time
}

// UpstreamSession is the gateway's session with an upstream server on
// behalf of a principal.
type UpstreamSession struct {
	// Upstream is the upstream's configured name.
	Upstream string
	// Principal is who the session acts for.
	Principal string
	// CredentialKind is how the gateway authenticates to the upstream
	// ("none", "header", "bearer", "oauth_client_credentials",
	// "oauth_user").
	CredentialKind string
	// Connected is when the session was established.
	Connected time.Time
}

// Task is an MCP task created through the gateway.
type Task struct {
	// ID is the gateway's task id.
	ID string
	// Owner is the principal that created it.
	Owner string
	// ClientID is the client it was created through, if known.
	ClientID string
	// Upstream runs it.
	Upstream string
	// Tool is the tool it runs, as the client named it, if known.
	Tool string `json:",omitempty"`
	// Grant is the grant it was started under, if known.
	Grant string `json:",omitempty"`
	// Status is the task status (working, input_required, completed,
	// failed, cancelled); StatusMessage the last message with it.
	Status        string
	StatusMessage string `json:",omitempty"`
	// Created is when it was created, Updated when its status was last
	// seen, and Expires when the gateway stops keeping it (zero: never);
	// TTLSeconds is Expires - Created in seconds (0: no ttl).
	Created    time.Time
	Updated    time.Time `json:",omitzero"`
	Expires    time.Time `json:",omitzero"`
	TTLSeconds int64     `json:",omitempty"`
}

// LiveSource reports what is live in a running gateway. Implementations
// must be safe for concurrent use and return copies.
type LiveSource interface {
	// Sessions returns the open downstream sessions.
	Sessions() []Session
	// UpstreamSessions returns the open upstream sessions.
	UpstreamSessions() []UpstreamSession
	// Tasks returns the known tasks.
	Tasks() []Task
}

// RegisterLiveSource adds a source of live sessions and tasks.
func (inv *Inventory) RegisterLiveSource(src LiveSource) {
	inv.liveMu.Lock()
	defer inv.liveMu.Unlock()
	inv.live = append(inv.live, src)
}

// User is a user in the graph: a local account or a subject seen in
// tokens or sessions.
type User struct {
	// Name is the username or token subject.
	Name string
	// Local reports a local account of the built-in authorization server.
	Local bool
	// IdP is the issuer of the trusted identity provider that vouched for
	// a federated subject, if known.
	IdP string
	// CreatedAt is when the local account was made.
	CreatedAt time.Time
	// Revoked reports a revocation of the user (or its IdP).
	Revoked bool
}

// Client is an OAuth client in the graph.
type Client struct {
	// ID is the client_id.
	ID string
	// Name is the client_name.
	Name string
	// RegistrationMethod is pre-registered, dynamic or cimd ("" for a
	// client seen in tokens but no longer registered).
	RegistrationMethod string
	// MachineToMachine reports a client that may use client_credentials;
	// EnterpriseManaged one that may use the jwt-bearer (ID-JAG) grant.
	MachineToMachine, EnterpriseManaged bool
	// CIMDURL is the metadata document URL for cimd clients.
	CIMDURL string
	// Metadata is the snapshot of its latest metadata document.
	Metadata string
	// MetadataDigest is its SHA-256.
	MetadataDigest string
	// RedirectURIs and RedirectHosts are its current redirect URIs and
	// their hosts.
	RedirectURIs, RedirectHosts []string
	// KeyThumbprints are RFC 7638 thumbprints of its current registered
	// keys (inline jwks, or a pre-registered client's keys); JWKSURI where
	// it publishes keys.
	KeyThumbprints []string
	JWKSURI        string
	// RemoteKeyThumbprints are the thumbprints of the keys last fetched
	// from JWKSURI, at RemoteKeysFetchedAt.
	RemoteKeyThumbprints []string  `json:",omitempty"`
	RemoteKeysFetchedAt  time.Time `json:",omitzero"`
	// DocumentDigest is the SHA-256 of the RFC 8785 canonical JSON of its
	// latest metadata document.
	DocumentDigest string `json:",omitempty"`
	// Approved is the approved baseline (first seen, or last approved)
	// of its trust objects.
	Approved *TrustObjects `json:",omitempty"`
	// Drift lists, while Flagged, each trust object that differs from
	// the approved baseline, with old (approved) and new values.
	Drift []Drift `json:",omitempty"`
	// History is the latest changes of its trust objects, newest last.
	History []store.ClientChange `json:",omitempty"`
	// FirstSeen and LastSeen bound its activity.
	FirstSeen, LastSeen time.Time
	// Flagged reports metadata that changed since approval, since
	// ChangedAt; ApprovedAt and ApprovedBy the last approval.
	Flagged    bool
	ChangedAt  time.Time
	ApprovedAt time.Time
	ApprovedBy string
	// Revoked reports a revocation of the client.
	Revoked bool
	// Admission is the administrator's admission decision: "" (none: the
	// configuration of its registration path decides), "pending",
	// "approved" or "refused" (store.Client.Status); AdmissionBy and
	// AdmissionAt record who decided and when.
	Admission   string    `json:",omitempty"`
	AdmissionBy string    `json:",omitempty"`
	AdmissionAt time.Time `json:",omitzero"`
}

// TrustObjects are the fingerprints a client is trusted with.
type TrustObjects struct {
	// RedirectURIs, KeyThumbprints and JWKSURI are from its metadata or
	// registration; RemoteKeyThumbprints are the keys behind JWKSURI.
	RedirectURIs, KeyThumbprints []string
	JWKSURI                      string   `json:",omitempty"`
	RemoteKeyThumbprints         []string `json:",omitempty"`
	// DocumentDigest is the canonical digest of the metadata document.
	DocumentDigest string `json:",omitempty"`
}

// Drift is one trust object of a client that differs from its approved
// value.
type Drift struct {
	// What is "redirect_uris", "jwks", "jwks_uri" or "jwks_uri keys".
	What string
	// Old is the approved value, New the current one.
	Old, New []string
}

// clientDrift lists the trust objects of r that differ from its approved
// baseline.
func clientDrift(r *store.ClientRecord) []Drift {
	var out []Drift
	add := func(what string, old, new []string) {
		if !slices.Equal(old, new) {
			out = append(out, Drift{What: what, Old: slices.Clone(old), New: slices.Clone(new)})
		}
	}
	if !r.ApprovedAt.IsZero() {
		add("redirect_uris", r.ApprovedRedirectURIs, r.RedirectURIs)
		add("jwks", r.ApprovedKeyThumbprints, r.KeyThumbprints)
		add("jwks_uri", nonEmpty(r.ApprovedJWKSURI), nonEmpty(r.JWKSURI))
	}
	if !r.RemoteKeysApprovedAt.IsZero() {
		add("jwks_uri keys", r.ApprovedRemoteKeyThumbprints, r.RemoteKeyThumbprints)
	}
	return out
}

// IdentityProvider is a trusted identity provider in the graph.
type IdentityProvider struct {
	// Issuer, Name and Kind are as recorded.
	Issuer, Name, Kind string
	// Distrusted reports a revocation of trust.
	Distrusted bool
}

// Tool is an upstream tool's fingerprint in the graph.
type Tool struct {
	// Name is the upstream's tool name.
	Name string
	// Digest is the SHA-256 of the latest canonical definition;
	// ApprovedDigest of the approved one.
	Digest, ApprovedDigest string
	// Flagged reports a definition changed since approval; Removed a tool
	// the upstream no longer lists; Pending a new tool never approved
	// (Options.HoldNewTools), hidden and refused until approved.
	Flagged, Removed, Pending bool
	// FirstSeen, LastSeen, ChangedAt and ApprovedAt are event times.
	FirstSeen, LastSeen, ChangedAt, ApprovedAt time.Time
	// ApprovedBy is who approved its definition ("" for a tool approved on
	// first sight, as the baseline of its upstream).
	ApprovedBy string `json:",omitempty"`
	// State sums up its approval: "approved", "pending" (new, never
	// approved), "changed" (differs from the approved definition) or
	// "removed" (no longer listed), as ApprovalState says.
	State string
}

// ApprovalState is a tool's approval state: "pending", "changed",
// "removed" or "approved", the first that applies.
func ApprovalState(t Tool) string {
	switch {
	case t.Pending:
		return "pending"
	case t.Flagged:
		return "changed"
	case t.Removed:
		return "removed"
	}
	return "approved"
}

// Upstream is an upstream server in the graph.
type Upstream struct {
	// Name is its configured name.
	Name string
	// Configured reports an upstream in the configuration a gateway last
	// started with (store.UpstreamRecord); the fields below are from
	// there. An upstream known only from its tools or credentials is not.
	Configured bool
	// Transport is "stdio", "streamable", "sse" or "auto"; URL a remote
	// upstream's endpoint; Command a stdio upstream's program and
	// arguments.
	Transport string   `json:",omitempty"`
	URL       string   `json:",omitempty"`
	Command   []string `json:",omitempty"`
	// CredentialType is how the gateway authenticates to it ("none",
	// "header", "bearer", "oauth_client_credentials", "oauth_user"),
	// PerUser reports a credential held per user.
	CredentialType string `json:",omitempty"`
	PerUser        bool   `json:",omitempty"`
	// Owner is who is responsible for it, as configured.
	Owner string `json:",omitempty"`
	// State is the running gateway's session with it as the gateway last
	// wrote it (store.UpstreamStateRecord), nil if none was written.
	State *UpstreamState `json:",omitempty"`
	// Tools are its tools, sorted by name.
	Tools []Tool
}

// UpstreamState is the state of the gateway's own session with an
// upstream: connecting, ready, backoff (failing, with the last error,
// until RetryAt), circuit_open, per_user, or stopped (the gateway
// stopped; UpdatedAt says when).
type UpstreamState = store.UpstreamStateRecord

// Credential is a per-user upstream credential (metadata only).
type Credential = store.UpstreamCredential

// Grant is a live grant: the tokens of one grant family (or one token
// without a family, as client credentials issue).
type Grant struct {
	// ID is the family id, or the token id for a token without family.
	ID string
	// User and Client are the subject and client_id.
	User, Client string
	// Resource is the audience.
	Resource string
	// Scopes are the granted scopes.
	Scopes []string
	// TokenIDs are the jti of its live access tokens.
	TokenIDs []string
	// RefreshTokens is how many live refresh tokens it has.
	RefreshTokens int
	// ExpiresAt is when its last live token expires.
	ExpiresAt time.Time
	// Revoked reports a revocation of the grant, its user or its client.
	Revoked bool
}

// Edge is a relation between two nodes of the graph. Node ids are
// "user:", "client:", "idp:", "grant:", "session:", "upstream:",
// "credential:<upstream>/<principal>" and "task:" followed by the id.
type Edge struct {
	// From and To are node ids.
	From, To string
	// Kind is vouches-for (idp→user), holds (user→grant), issued-to
	// (grant→client), uses (user→client), opened (client→session), owns
	// (user→session, user→task), reaches (session→upstream), runs-on
	// (task→upstream), authenticates-with (upstream→credential).
	Kind string
}

// Graph is a snapshot of the inventory.
type Graph struct {
	// Time is when it was taken.
	Time time.Time
	// Users, Clients, IdentityProviders, Upstreams, Credentials, Grants,
	// Sessions, UpstreamSessions, Tasks and Revocations are the nodes,
	// each sorted by id.
	Users             []User
	Clients           []Client
	IdentityProviders []IdentityProvider
	Upstreams         []Upstream
	Credentials       []Credential
	Grants            []Grant
	Sessions          []Session
	UpstreamSessions  []UpstreamSession
	Tasks             []Task
	Revocations       []store.Revocation
	// Edges relate them, sorted.
	Edges []Edge
}

// IdPOfSubject returns the issuer among issuers that vouched for a
// federated subject (see [principal.Subject.IdP]), or "".
func IdPOfSubject(subject string, issuers []string) string {
	return principal.Subject(subject).IdP(issuers)
}

func splitScopes(s string) []string { return strings.Fields(s) }

// Graph returns a snapshot of everything the inventory knows: the
// identity store, the inventory store and the registered live sources.
func (inv *Inventory) Graph(ctx context.Context) (*Graph, error) {
	now := inv.now()
	g := &Graph{Time: now}
	revs, err := inv.st.ListRevocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	revoked := map[[2]string]bool{}
	for _, r := range revs {
		g.Revocations = append(g.Revocations, *r)
		revoked[[2]string{r.Kind, r.ID}] = true
	}

	idps, err := inv.st.ListIdentityProviders(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	var issuers []string
	for _, p := range idps {
		issuers = append(issuers, p.Issuer)
		g.IdentityProviders = append(g.IdentityProviders, IdentityProvider{Issuer: p.Issuer, Name: p.Name, Kind: p.Kind, Distrusted: revoked[[2]string{store.RevokeIdP, p.Issuer}]})
	}

	users := map[string]*User{}
	addUser := func(name string) *User {
		if name == "" {
			return nil
		}
		u := users[name]
		if u == nil {
			u = &User{Name: name, IdP: IdPOfSubject(name, issuers)}
			u.Revoked = revoked[[2]string{store.RevokeUser, name}] || (u.IdP != "" && revoked[[2]string{store.RevokeIdP, u.IdP}])
			users[name] = u
		}
		return u
	}
	local, err := inv.ids.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	for _, lu := range local {
		u := addUser(lu.Username)
		u.Local, u.CreatedAt = true, lu.CreatedAt
	}

	clients := map[string]*Client{}
	addClient := func(id string) *Client {
		c := clients[id]
		if c == nil {
			c = &Client{ID: id, Revoked: revoked[[2]string{store.RevokeClient, id}]}
			clients[id] = c
		}
		return c
	}
	registered, err := inv.ids.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	for _, sc := range registered {
		c := addClient(sc.ID)
		c.Name, c.RegistrationMethod = sc.Name, sc.Kind
		c.Admission, c.AdmissionBy, c.AdmissionAt = sc.Status, sc.StatusBy, sc.StatusAt
		c.MachineToMachine = slices.Contains(sc.GrantTypes, "client_credentials")
		c.EnterpriseManaged = slices.Contains(sc.GrantTypes, "urn:ietf:params:oauth:grant-type:jwt-bearer")
		if sc.Kind == store.ClientMetadataDocument {
			c.CIMDURL = sc.ID
		}
		c.RedirectURIs, c.JWKSURI = slices.Clone(sc.RedirectURIs), sc.JWKSURI
		if sc.JWKS != "" {
			// Registered keys, fingerprinted even before first use.
			c.KeyThumbprints, _ = KeySetThumbprints([]byte(sc.JWKS))
		}
		if sc.Metadata != "" {
			c.Metadata, c.MetadataDigest = sc.Metadata, store.Digest(sc.Metadata)
		}
	}
	recs, err := inv.st.ListClientRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	for _, r := range recs {
		c := addClient(r.ClientID)
		c.FirstSeen, c.LastSeen = r.FirstSeen, r.LastSeen
		c.Flagged, c.ChangedAt, c.ApprovedAt, c.ApprovedBy = r.Changed, r.ChangedAt, r.ApprovedAt, r.ApprovedBy
		if r.MetadataDigest != "" {
			c.Metadata, c.MetadataDigest = r.Metadata, r.MetadataDigest
			c.RedirectURIs, c.KeyThumbprints, c.JWKSURI = slices.Clone(r.RedirectURIs), slices.Clone(r.KeyThumbprints), r.JWKSURI
		} else if len(r.KeyThumbprints) > 0 {
			c.KeyThumbprints = slices.Clone(r.KeyThumbprints)
		}
		c.DocumentDigest = r.DocumentDigest
		c.RemoteKeyThumbprints, c.RemoteKeysFetchedAt = slices.Clone(r.RemoteKeyThumbprints), r.RemoteKeysFetchedAt
		if !r.ApprovedAt.IsZero() || !r.RemoteKeysApprovedAt.IsZero() {
			c.Approved = &TrustObjects{RedirectURIs: slices.Clone(r.ApprovedRedirectURIs), KeyThumbprints: slices.Clone(r.ApprovedKeyThumbprints),
				JWKSURI: r.ApprovedJWKSURI, RemoteKeyThumbprints: slices.Clone(r.ApprovedRemoteKeyThumbprints), DocumentDigest: r.ApprovedDocumentDigest}
		}
		if r.Changed {
			c.Drift = clientDrift(r)
		}
		c.History = store.CloneClientRecord(r).History
	}

	edges := map[Edge]bool{}
	edge := func(from, to, kind string) { edges[Edge{From: from, To: to, Kind: kind}] = true }

	// principal returns the node of a principal: a user, or the client
	// itself for a machine-to-machine client acting as itself.
	principal := func(name string) string {
		if users[name] == nil && clients[name] != nil {
			return "client:" + name
		}
		addUser(name)
		return "user:" + name
	}

	// Grants.
	if gl, ok := inv.ids.(store.GrantLister); ok {
		grants := map[string]*Grant{}
		grant := func(id, user, client, resource, scope string) *Grant {
			gr := grants[id]
			if gr == nil {
				gr = &Grant{ID: id, User: user, Client: client, Resource: resource, Scopes: splitScopes(scope)}
				gr.Revoked = revoked[[2]string{store.RevokeGrant, id}] || revoked[[2]string{store.RevokeUser, user}] || revoked[[2]string{store.RevokeClient, client}]
				grants[id] = gr
			}
			return gr
		}
		toks, err := gl.ListAccessTokens(ctx, now)
		if err != nil {
			return nil, fmt.Errorf("inventory: graph: %w", err)
		}
		for _, t := range toks {
			id := t.FamilyID
			if id == "" {
				id = t.ID
			}
			gr := grant(id, t.Subject, t.ClientID, t.Resource, t.Scope)
			gr.TokenIDs = append(gr.TokenIDs, t.ID)
			if t.ExpiresAt.After(gr.ExpiresAt) {
				gr.ExpiresAt = t.ExpiresAt
			}
		}
		rts, err := gl.ListRefreshTokens(ctx, now)
		if err != nil {
			return nil, fmt.Errorf("inventory: graph: %w", err)
		}
		for _, t := range rts {
			gr := grant(t.FamilyID, t.Subject, t.ClientID, t.Resource, t.Scope)
			gr.RefreshTokens++
			if t.ExpiresAt.After(gr.ExpiresAt) {
				gr.ExpiresAt = t.ExpiresAt
			}
		}
		for _, gr := range grants {
			slices.Sort(gr.TokenIDs)
			g.Grants = append(g.Grants, *gr)
			addClient(gr.Client)
			edge("grant:"+gr.ID, "client:"+gr.Client, "issued-to")
			if gr.User != "" && gr.User != gr.Client {
				addUser(gr.User)
				edge("user:"+gr.User, "grant:"+gr.ID, "holds")
				edge("user:"+gr.User, "client:"+gr.Client, "uses")
			}
		}
		slices.SortFunc(g.Grants, func(a, b Grant) int { return cmp.Compare(a.ID, b.ID) })
	}

	// Upstreams and credentials.
	upstreams := map[string]*Upstream{}
	addUpstream := func(name string) *Upstream {
		u := upstreams[name]
		if u == nil {
			u = &Upstream{Name: name}
			upstreams[name] = u
		}
		return u
	}
	tools, err := inv.st.ListToolRecords(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	for _, t := range tools {
		u := addUpstream(t.Upstream)
		tool := Tool{Name: t.Name, Digest: t.Digest, ApprovedDigest: t.ApprovedDigest, Flagged: t.Changed, Removed: t.Removed, Pending: t.ApprovedDigest == "",
			FirstSeen: t.FirstSeen, LastSeen: t.LastSeen, ChangedAt: t.ChangedAt, ApprovedAt: t.ApprovedAt, ApprovedBy: t.ApprovedBy}
		tool.State = ApprovalState(tool)
		u.Tools = append(u.Tools, tool)
	}
	if ur, ok := inv.st.(store.UpstreamRecords); ok {
		recs, err := ur.ListUpstreamRecords(ctx)
		if err != nil {
			return nil, fmt.Errorf("inventory: graph: %w", err)
		}
		for _, r := range recs {
			u := addUpstream(r.Name)
			u.Configured, u.Transport, u.URL, u.Command = true, r.Transport, r.URL, slices.Clone(r.Command)
			u.CredentialType, u.PerUser, u.Owner = r.CredentialType, r.PerUser, r.Owner
		}
	}
	if us, ok := inv.st.(store.UpstreamStates); ok {
		states, err := us.ListUpstreamStates(ctx)
		if err != nil {
			return nil, fmt.Errorf("inventory: graph: %w", err)
		}
		for _, st := range states {
			addUpstream(st.Name).State = st
		}
	}
	creds, err := inv.st.ListUpstreamCredentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	if ts, ok := inv.st.(upstreamTokens); ok {
		// Per-user tokens the gateway holds (sealed; only who and when
		// are read) that were not recorded with RecordUpstreamCredential.
		toks, err := ts.ListUpstreamTokens(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("inventory: graph: %w", err)
		}
		for _, t := range toks {
			if strings.HasPrefix(t.Upstream, "@") {
				continue // not an upstream: the gateway's own rows (the identity assertions kept for enterprise credentials)
			}
			if !slices.ContainsFunc(creds, func(c *store.UpstreamCredential) bool { return c.Principal == t.Principal && c.Upstream == t.Upstream }) {
				creds = append(creds, &store.UpstreamCredential{Principal: t.Principal, Upstream: t.Upstream, Kind: "oauth_user", CreatedAt: t.UpdatedAt})
			}
		}
		slices.SortFunc(creds, func(a, b *store.UpstreamCredential) int {
			return cmp.Or(cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Upstream, b.Upstream))
		})
	}
	for _, c := range creds {
		g.Credentials = append(g.Credentials, *c)
		addUpstream(c.Upstream)
		principal(c.Principal)
		edge("upstream:"+c.Upstream, "credential:"+c.Upstream+"/"+c.Principal, "authenticates-with")
	}

	// Live state: the session and task records in the database (what the
	// command line sees), and what a gateway in this process reports.
	if err := inv.storedLive(ctx, g); err != nil {
		return nil, fmt.Errorf("inventory: graph: %w", err)
	}
	inv.liveMu.Lock()
	live := slices.Clone(inv.live)
	inv.liveMu.Unlock()
	for _, src := range live {
		g.Sessions = mergeByID(g.Sessions, src.Sessions(), func(s Session) string { return s.ID })
		g.UpstreamSessions = append(g.UpstreamSessions, src.UpstreamSessions()...)
		g.Tasks = mergeByID(g.Tasks, src.Tasks(), func(t Task) string { return t.ID })
	}
	slices.SortFunc(g.Sessions, func(a, b Session) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(g.UpstreamSessions, func(a, b UpstreamSession) int {
		return cmp.Or(cmp.Compare(a.Upstream, b.Upstream), cmp.Compare(a.Principal, b.Principal))
	})
	slices.SortFunc(g.Tasks, func(a, b Task) int { return cmp.Compare(a.ID, b.ID) })
	for _, s := range g.Sessions {
		p := principal(s.Principal)
		if p != "client:"+s.ClientID {
			edge(p, "session:"+s.ID, "owns")
		}
		if s.ClientID != "" {
			addClient(s.ClientID)
			if p != "client:"+s.ClientID {
				edge(p, "client:"+s.ClientID, "uses")
			}
			edge("client:"+s.ClientID, "session:"+s.ID, "opened")
		}
		for _, us := range g.UpstreamSessions {
			if us.Principal == s.Principal {
				edge("session:"+s.ID, "upstream:"+us.Upstream, "reaches")
			}
		}
	}
	for _, us := range g.UpstreamSessions {
		addUpstream(us.Upstream)
		edge("upstream:"+us.Upstream, "credential:"+us.Upstream+"/"+credentialOwner(creds, us), "authenticates-with")
	}
	for _, t := range g.Tasks {
		edge(principal(t.Owner), "task:"+t.ID, "owns")
		if t.Upstream != "" {
			addUpstream(t.Upstream)
			edge("task:"+t.ID, "upstream:"+t.Upstream, "runs-on")
		}
	}
	for _, u := range users {
		if u.IdP != "" {
			edge("idp:"+u.IdP, "user:"+u.Name, "vouches-for")
		}
	}

	for _, k := range sortedKeys(users) {
		g.Users = append(g.Users, *users[k])
	}
	for _, k := range sortedKeys(clients) {
		g.Clients = append(g.Clients, *clients[k])
	}
	for i := range g.Clients {
		g.Clients[i].RedirectHosts = RedirectHosts(g.Clients[i].RedirectURIs)
	}
	for _, k := range sortedKeys(upstreams) {
		g.Upstreams = append(g.Upstreams, *upstreams[k])
	}
	for e := range edges {
		g.Edges = append(g.Edges, e)
	}
	slices.SortFunc(g.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind))
	})
	return g, nil
}

// storedLive adds to g the live sessions and the tasks recorded in the
// stores, if they keep them (store.GatewaySessions, store.GatewayTasks).
func (inv *Inventory) storedLive(ctx context.Context, g *Graph) error {
	var sessions store.GatewaySessions
	var tasks store.GatewayTasks
	for _, st := range []any{inv.st, inv.ids} {
		if s, ok := st.(store.GatewaySessions); ok && sessions == nil {
			sessions = s
		}
		if t, ok := st.(store.GatewayTasks); ok && tasks == nil {
			tasks = t
		}
	}
	if sessions != nil {
		recs, err := sessions.ListGatewaySessions(ctx, false)
		if err != nil {
			return err
		}
		for _, r := range recs {
			g.Sessions = append(g.Sessions, Session{ID: r.ID, Principal: r.Principal, ClientID: r.ClientID, Grant: r.Grant, TokenID: r.TokenID,
				Transport: r.Transport, SourceAddr: r.SourceAddr, Created: r.CreatedAt, LastSeen: r.LastSeen})
		}
	}
	if tasks != nil {
		recs, err := tasks.ListGatewayTasks(ctx, "")
		if err != nil {
			return err
		}
		for _, r := range recs {
			g.Tasks = append(g.Tasks, TaskOf(r))
		}
	}
	return nil
}

// TaskOf returns the inventory's view of a gateway task record.
func TaskOf(r *store.GatewayTask) Task {
	t := Task{ID: r.ID, Owner: r.Principal, ClientID: r.ClientID, Grant: r.Grant, Upstream: r.Upstream, Tool: r.Tool, Status: r.Status, StatusMessage: r.StatusMessage,
		Created: r.CreatedAt, Updated: r.UpdatedAt, Expires: r.ExpiresAt}
	if !r.ExpiresAt.IsZero() && !r.CreatedAt.IsZero() {
		t.TTLSeconds = int64(r.ExpiresAt.Sub(r.CreatedAt) / time.Second)
	}
	return t
}

// mergeByID appends to have the items of more whose id it does not hold
// yet (the stored record, which says more, wins).
func mergeByID[T any](have, more []T, id func(T) string) []T {
	idx := make(map[string]int, len(have))
	for i, x := range have {
		idx[id(x)] = i
	}
	for _, x := range more {
		if _, ok := idx[id(x)]; ok {
			continue
		}
		idx[id(x)] = len(have)
		have = append(have, x)
	}
	return have
}

// credentialOwner names the credential an upstream session uses: the
// principal's own if one is recorded, otherwise the gateway's shared
// credential ("*").
func credentialOwner(creds []*store.UpstreamCredential, us UpstreamSession) string {
	for _, c := range creds {
		if c.Principal == us.Principal && c.Upstream == us.Upstream {
			return us.Principal
		}
	}
	return "*"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Path is one execution path of a principal: user → client → session →
// upstream → credential. Later elements are empty where the path stops
// (a grant without a session, a session that reached no upstream yet).
type Path struct {
	// User is the principal.
	User string
	// IdP is the identity provider that vouched for it, if any.
	IdP string
	// Client is the OAuth client.
	Client string
	// Grant is the grant family the session's token belongs to, if
	// known.
	Grant string
	// Session is the downstream session id.
	Session string
	// Upstream is the upstream server reached.
	Upstream string
	// Credential describes what the gateway authenticates to the
	// upstream with: "user:<kind>" for the principal's own credential,
	// "gateway:<kind>" for the gateway's shared one.
	Credential string
	// Tasks are the principal's tasks on that upstream.
	Tasks []string
}

// String renders the path with arrows.
func (p Path) String() string {
	parts := []string{"user " + p.User}
	if p.IdP != "" {
		parts[0] += " (via " + p.IdP + ")"
	}
	add := func(what, v string) {
		if v != "" {
			parts = append(parts, what+" "+v)
		}
	}
	add("client", p.Client)
	add("session", p.Session)
	add("upstream", p.Upstream)
	add("credential", p.Credential)
	s := strings.Join(parts, " → ")
	if len(p.Tasks) > 0 {
		s += " [tasks: " + strings.Join(p.Tasks, ", ") + "]"
	}
	return s
}

// Paths returns every execution path of principal (a user, or the
// client id of a machine-to-machine client), from its sessions and, for
// clients it holds grants with but has no session through, the shorter
// path user → client.
func (inv *Inventory) Paths(ctx context.Context, principal string) ([]Path, error) {
	g, err := inv.Graph(ctx)
	if err != nil {
		return nil, err
	}
	return g.Paths(principal), nil
}

// Paths returns the execution paths of principal in the snapshot.
func (g *Graph) Paths(principal string) []Path {
	var issuers []string
	for _, p := range g.IdentityProviders {
		issuers = append(issuers, p.Issuer)
	}
	idp := IdPOfSubject(principal, issuers)
	creds := map[string]Credential{}
	for _, c := range g.Credentials {
		if c.Principal == principal {
			creds[c.Upstream] = c
		}
	}
	tasks := map[string][]string{}
	for _, t := range g.Tasks {
		if t.Owner == principal {
			tasks[t.Upstream] = append(tasks[t.Upstream], t.ID)
		}
	}
	var out []Path
	covered := map[string]bool{}
	for _, s := range g.Sessions {
		if s.Principal != principal {
			continue
		}
		covered[s.ClientID] = true
		base := Path{User: principal, IdP: idp, Client: s.ClientID, Grant: s.Grant, Session: s.ID}
		n := 0
		for _, us := range g.UpstreamSessions {
			if us.Principal != principal {
				continue
			}
			p := base
			p.Upstream = us.Upstream
			if c, ok := creds[us.Upstream]; ok {
				p.Credential = "user:" + c.Kind
			} else {
				p.Credential = "gateway:" + cmp.Or(us.CredentialKind, "none")
			}
			p.Tasks = tasks[us.Upstream]
			out = append(out, p)
			n++
		}
		if n == 0 {
			out = append(out, base)
		}
	}
	for _, gr := range g.Grants {
		if (gr.User == principal || gr.Client == principal) && !covered[gr.Client] {
			covered[gr.Client] = true
			out = append(out, Path{User: principal, IdP: idp, Client: gr.Client, Grant: gr.ID})
		}
	}
	// Per-user credentials not exercised by a live session.
	for _, c := range g.Credentials {
		if c.Principal != principal {
			continue
		}
		found := false
		for _, p := range out {
			if p.Upstream == c.Upstream {
				found = true
				break
			}
		}
		if !found {
			out = append(out, Path{User: principal, IdP: idp, Upstream: c.Upstream, Credential: "user:" + c.Kind})
		}
	}
	return out
}
