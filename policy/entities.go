package policy

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// Entity types of the mcpgate Cedar model. See docs/policy.md.
const (
	TypeUser       = "User"
	TypeClient     = "Client"
	TypeIdP        = "IdP"
	TypeAnonymous  = "Anonymous"
	TypeAction     = "Action"
	TypeUpstream   = "Upstream"
	TypeTool       = "Tool"
	TypeResource   = "Resource"
	TypePrompt     = "Prompt"
	TypeTask       = "Task"
	TypeCompletion = "Completion"
)

var entityTypes = []string{TypeUser, TypeClient, TypeIdP, TypeAnonymous, TypeAction,
	TypeUpstream, TypeTool, TypeResource, TypePrompt, TypeTask, TypeCompletion}

// Resource kinds accepted in [Resource.Kind].
const (
	KindTool          = "tool"
	KindResource      = "resource"
	KindPrompt        = "prompt"
	KindUpstream      = "upstream"
	KindTask          = "task"
	KindCompletion    = "completion"
	KindClientRequest = "client-request"
)

// actionGroups maps every MCP method the gateway decides on to the action
// groups it belongs to. Group names never contain "/", so they cannot clash
// with method names.
var actionGroups = map[string][]string{
	"tools/list":               {"tools", "list", "read"},
	"tools/call":               {"tools", "call"},
	"resources/list":           {"resources", "list", "read"},
	"resources/templates/list": {"resources", "list", "read"},
	"resources/read":           {"resources", "read"},
	"prompts/list":             {"prompts", "list", "read"},
	"prompts/get":              {"prompts", "read"},
	"completion/complete":      {"completion", "read"},
	"tasks/get":                {"tasks", "read"},
	"tasks/result":             {"tasks", "read"},
	"tasks/list":               {"tasks", "list", "read"},
	"tasks/cancel":             {"tasks", "call"},
	"resources/subscribe":      {"resources", "read"},
	"resources/unsubscribe":    {"resources"},
	"logging/setLevel":         {"logging"},
	"sampling/createMessage":   {"client-requests"},
	"elicitation/create":       {"client-requests"},
	"roots/list":               {"client-requests"},
	// The client's roots/list_changed notification, relayed to upstreams
	// whose roots setting is relay.
	"notifications/roots/list_changed": {"client-requests"},
	// A client's status of a task it runs for an upstream, relayed to it.
	"notifications/tasks/status": {"client-requests"},
}

// argumentActions are the actions whose context always has an arguments
// record (empty when the request carries none).
var argumentActions = map[string]bool{
	"tools/call":          true,
	"prompts/get":         true,
	"completion/complete": true,
}

// Actions returns the MCP methods the policy model knows, sorted.
func Actions() []string {
	var out []string
	for a := range actionGroups {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ActionGroups returns the action group names, sorted.
func ActionGroups() []string {
	var out []string
	for _, gs := range actionGroups {
		for _, g := range gs {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// buildActionEntities returns the immutable entity map of actions and their
// groups.
func buildActionEntities() types.EntityMap {
	m := types.EntityMap{}
	for a, gs := range actionGroups {
		parents := make([]types.EntityUID, len(gs))
		for i, g := range gs {
			parents[i] = actionUID(g)
			if _, ok := m[parents[i]]; !ok {
				m[parents[i]] = types.Entity{UID: parents[i]}
			}
		}
		uid := actionUID(a)
		m[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...)}
	}
	return m
}

func actionUID(name string) types.EntityUID {
	return types.NewEntityUID(TypeAction, types.String(name))
}

// maxCachedEntities bounds the engine's cache of request entities; the
// cache is emptied when it grows past this size.
const maxCachedEntities = 16384

// entityKey identifies a cached entity by the request fields it derives from.
type entityKey struct {
	kind       string // "user", "client", "upstream" or a resource kind
	a, b, c, d string
	md         uint64 // hash of the client metadata fields that become attributes
	// id is a hash of the user's identity attributes (groups, roles,
	// email, name), so that users who differ in them never share an
	// entity.
	id uint64
}

// entityCache holds immutable entities derived purely from their keys, so
// that repeated decisions (every item of a list, every call of a session)
// do not rebuild the same attribute records.
type entityCache struct {
	seed maphash.Seed
	m    sync.Map // entityKey -> types.Entity; lock-free reads
	n    atomic.Int64
}

func newEntityCache() *entityCache {
	return &entityCache{seed: maphash.MakeSeed()}
}

func (c *entityCache) load(k entityKey) (types.Entity, bool) {
	v, ok := c.m.Load(k)
	if !ok {
		return types.Entity{}, false
	}
	return v.(types.Entity), true
}

func (c *entityCache) store(k entityKey, e types.Entity) {
	if c.n.Load() >= maxCachedEntities {
		c.m.Clear()
		c.n.Store(0)
	}
	if _, loaded := c.m.LoadOrStore(k, e); !loaded {
		c.n.Add(1)
	}
}

// requestEntities is the entity store of one decision: the request's
// principal, client, resource, upstream and identity provider, and the
// engine's static action entities.
type requestEntities struct {
	actions types.EntityMap
	list    [5]types.Entity
	n       int
}

func (r *requestEntities) add(e types.Entity) {
	for i := range r.n {
		if r.list[i].UID == e.UID {
			return
		}
	}
	r.list[r.n] = e
	r.n++
}

// Get implements [types.EntityGetter].
func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	for i := range r.n {
		if r.list[i].UID == uid {
			return r.list[i], true
		}
	}
	e, ok := r.actions[uid]
	return e, ok
}

// cedarRequest is a [Request] translated to the Cedar model.
type cedarRequest struct {
	req        types.Request
	entities   requestEntities
	candidates *candidates
	policies   filteredPolicies
}

// toCedar translates r into cr: the entities, the candidate policies of set,
// and the parts of the context those policies may read.
//
// With exhaustive set (tests only), every policy is evaluated against the
// whole context, without the index, pruning or scope pre-check.
func (r *Request) toCedar(cr *cedarRequest, set *policySet, cache *entityCache, decoders *sync.Pool, now func() time.Time, exhaustive bool) error {
	if r.Action == "" {
		return fmt.Errorf("empty action")
	}
	cr.req.Action = actionUID(r.Action)
	p := &r.Principal

	var idp types.EntityUID
	if p.IdP != "" {
		idp = types.NewEntityUID(TypeIdP, types.String(p.IdP))
		cr.entities.add(types.Entity{UID: idp})
	}
	var clientUID types.EntityUID
	if p.Client.ID != "" {
		parentIdP := ""
		if p.User == "" {
			parentIdP = p.IdP
		}
		k := entityKey{kind: "client", a: p.Client.ID, b: p.Client.Name, c: p.Client.Registration, d: parentIdP, md: cache.metadataHash(r.ClientMetadata)}
		e, ok := cache.load(k)
		if !ok {
			var parents types.EntityUIDSet
			if parentIdP != "" {
				parents = types.NewEntityUIDSet(idp)
			}
			e = types.Entity{UID: types.NewEntityUID(TypeClient, types.String(p.Client.ID)), Parents: parents, Attributes: clientAttributes(&p.Client, parentIdP, r.ClientMetadata)}
			cache.store(k, e)
		}
		clientUID = e.UID
		cr.entities.add(e)
	}
	switch {
	case p.User != "":
		k := entityKey{kind: "user", a: p.User, b: p.IdP, id: cache.identityHash(p)}
		e, ok := cache.load(k)
		if !ok {
			var parents types.EntityUIDSet
			if p.IdP != "" {
				parents = types.NewEntityUIDSet(idp)
			}
			e = types.Entity{UID: types.NewEntityUID(TypeUser, types.String(p.User)), Parents: parents, Attributes: userAttributes(p)}
			cache.store(k, e)
		}
		cr.req.Principal = e.UID
		cr.entities.add(e)
	case p.Client.ID != "":
		cr.req.Principal = clientUID
	default:
		cr.req.Principal = types.NewEntityUID(TypeAnonymous, "anonymous")
		cr.entities.add(anonymousEntity)
	}

	k := entityKey{kind: r.Resource.Kind, a: r.Resource.Upstream, b: r.Resource.Name}
	res, ok := cache.load(k)
	if !ok {
		var err error
		if res, err = resourceEntity(&r.Resource); err != nil {
			return err
		}
		cache.store(k, res)
	}
	cr.req.Resource = res.UID
	cr.entities.add(res)
	cr.policies.scope = requestScope{principal: cr.req.Principal, principalParent: idp, resource: res.UID}
	if r.Resource.Upstream != "" && res.UID.Type != TypeUpstream {
		k := entityKey{kind: KindUpstream, a: r.Resource.Upstream}
		up, ok := cache.load(k)
		if !ok {
			up = upstreamEntity(r.Resource.Upstream)
			cache.store(k, up)
		}
		cr.entities.add(up)
		cr.policies.scope.resourceParent = up.UID
	}

	cr.candidates = set.candidates(cr.req.Action, cr.req.Principal, cr.req.Resource)
	if exhaustive {
		cr.candidates = &candidates{policies: set.policies, needs: allNeeds}
		cr.policies.all = true
	}
	cr.policies.policies = cr.candidates.policies
	needs := cr.candidates.needs

	ctx := make(types.RecordMap, 8)
	if r.Arguments != nil || (argumentActions[r.Action] && !r.Probe) {
		args := types.Record{}
		traversal := false
		if r.Arguments != nil {
			// Arguments are always parsed, so that malformed arguments are
			// refused whatever the policies read.
			conv, _ := decoders.Get().(*argumentsConverter)
			if conv == nil {
				conv = new(argumentsConverter)
			}
			conv.needs = needs
			conv.scan = needs.context("path_traversal")
			var err error
			args, err = conv.convertArguments(r.Arguments)
			traversal = conv.traversal
			conv.needs = nil
			decoders.Put(conv)
			if err != nil {
				return err
			}
		}
		if needs.context("arguments") {
			ctx["arguments"] = args
		}
		if needs.context("path_traversal") {
			ctx["path_traversal"] = types.Boolean(traversal)
		}
	}
	if needs.context("scopes") {
		scopes := make([]types.Value, len(r.Scopes))
		for i, s := range r.Scopes {
			scopes[i] = types.String(s)
		}
		ctx["scopes"] = types.NewSet(scopes...)
	}
	if needs.context("time") || needs.context("hour") || needs.context("weekday") {
		t := r.Time
		if t.IsZero() {
			t = now()
		}
		t = t.UTC()
		if needs.context("time") {
			ctx["time"] = types.NewDatetime(t)
		}
		if needs.context("hour") {
			ctx["hour"] = types.Long(t.Hour())
		}
		if needs.context("weekday") {
			ctx["weekday"] = types.String(t.Weekday().String())
		}
	}
	if needs.context("source_ip") {
		if ip, ok := sourceIP(r.SourceAddr); ok {
			ctx["source_ip"] = ip
		}
	}
	if clientUID.Type != "" && needs.context("client") {
		ctx["client"] = clientUID
	}
	if p.Session != "" && needs.context("session") {
		ctx["session"] = types.String(p.Session)
	}
	if r.Task != nil && needs.context("task") {
		ctx["task"] = r.Task.record()
	}
	cr.req.Context = types.NewRecord(ctx)
	return nil
}

// identityAttributes adds the identity attributes every principal entity
// has, so that a policy reading them evaluates for any principal: groups
// and roles (sets of strings), email, name and idp (strings), empty when
// unknown.
func identityAttributes(m types.RecordMap, groups, roles []string, email, name, idp string) {
	m["groups"] = stringSet(groups)
	m["roles"] = stringSet(roles)
	m["email"] = types.String(email)
	if _, ok := m["name"]; !ok {
		m["name"] = types.String(name)
	}
	m["idp"] = types.String(idp)
}

func stringSet(l []string) types.Set {
	vs := make([]types.Value, len(l))
	for i, s := range l {
		vs[i] = types.String(s)
	}
	return types.NewSet(vs...)
}

// userAttributes are the attributes of a User entity.
func userAttributes(p *Principal) types.Record {
	m := types.RecordMap{"id": types.String(p.User)}
	identityAttributes(m, p.Groups, p.Roles, p.Email, p.Name, p.IdP)
	return types.NewRecord(m)
}

// anonymousEntity is the principal of unauthenticated requests.
var anonymousEntity = func() types.Entity {
	m := types.RecordMap{"id": types.String("anonymous")}
	identityAttributes(m, nil, nil, "", "", "")
	return types.Entity{UID: types.NewEntityUID(TypeAnonymous, "anonymous"), Attributes: types.NewRecord(m)}
}()

// identityHash returns a seeded hash of the identity attributes of p that
// become User attributes besides its id and idp; it keys the user entity
// cache.
func (c *entityCache) identityHash(p *Principal) uint64 {
	if len(p.Groups) == 0 && len(p.Roles) == 0 && p.Email == "" && p.Name == "" {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, l := range [][]string{p.Groups, p.Roles} {
		for _, s := range l {
			// Length-prefixed, so that no two lists hash alike by
			// moving a boundary.
			writeLen(&h, len(s))
			h.WriteString(s)
		}
		h.WriteByte(0xff)
	}
	for _, s := range []string{p.Email, p.Name} {
		writeLen(&h, len(s))
		h.WriteString(s)
	}
	return h.Sum64() | 1 // never 0, the key of a user without attributes
}

func writeLen(h *maphash.Hash, n int) {
	var b [8]byte
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	h.Write(b[:])
}

// metadataFields are the client metadata fields that become attributes.
var metadataFields = []string{"client_name", "client_uri", "software_id", "software_version", "token_endpoint_auth_method", "redirect_uris", "grant_types"}

// metadataHash returns a seeded hash of the client metadata fields that
// become Client attributes; it keys the client entity cache.
func (c *entityCache) metadataHash(md map[string]any) uint64 {
	if len(md) == 0 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, f := range metadataFields {
		switch v := md[f].(type) {
		case string:
			h.WriteByte('s')
			h.WriteString(v)
		case []string:
			for _, s := range v {
				h.WriteByte('l')
				h.WriteString(s)
			}
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					h.WriteByte('l')
					h.WriteString(s)
				}
			}
		}
		h.WriteByte(0)
	}
	return h.Sum64()
}

// sourceIP parses "host", "host:port" or "[v6]:port" into a Cedar ipaddr.
func sourceIP(s string) (types.IPAddr, bool) {
	if s == "" {
		return types.IPAddr{}, false
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return types.IPAddr{}, false
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	return types.IPAddr(netip.PrefixFrom(addr, addr.BitLen())), true
}

// clientAttributes builds the attributes of a Client entity from the
// client's identity and selected fields of its metadata; idp is the
// identity provider a client acting for itself came through. A client has
// the identity attributes of every principal, with empty groups, roles and
// email.
func clientAttributes(c *Client, idp string, md map[string]any) types.Record {
	m := types.RecordMap{
		"id":           types.String(c.ID),
		"registration": types.String(c.Registration),
	}
	name := c.Name
	if name == "" {
		if s, ok := md["client_name"].(string); ok {
			name = s
		}
	}
	m["name"] = types.String(name)
	for _, k := range []string{"client_uri", "software_id", "software_version", "token_endpoint_auth_method"} {
		if s, ok := md[k].(string); ok {
			m[types.String(k)] = types.String(s)
		}
	}
	var hosts []types.Value
	for _, u := range stringList(md["redirect_uris"]) {
		if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" {
			hosts = append(hosts, types.String(pu.Hostname()))
		}
	}
	m["redirect_hosts"] = types.NewSet(hosts...)
	var grants []types.Value
	for _, g := range stringList(md["grant_types"]) {
		grants = append(grants, types.String(g))
	}
	m["grant_types"] = types.NewSet(grants...)
	identityAttributes(m, nil, nil, "", "", idp)
	return types.NewRecord(m)
}

func stringList(v any) []string {
	switch v := v.(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func upstreamEntity(name string) types.Entity {
	return types.Entity{
		UID:        types.NewEntityUID(TypeUpstream, types.String(name)),
		Attributes: types.NewRecord(types.RecordMap{"name": types.String(name)}),
	}
}

// resourceEntity returns the entity of r: a Tool, Prompt, Completion,
// Resource or Task inside its Upstream, or the Upstream itself.
func resourceEntity(r *Resource) (types.Entity, error) {
	var parents types.EntityUIDSet
	if r.Upstream != "" {
		parents = types.NewEntityUIDSet(types.NewEntityUID(TypeUpstream, types.String(r.Upstream)))
	}
	attrs := func(extra ...string) types.Record {
		m := types.RecordMap{
			"kind":     types.String(r.Kind),
			"name":     types.String(r.Name),
			"upstream": types.String(r.Upstream),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[types.String(extra[i])] = types.String(extra[i+1])
		}
		return types.NewRecord(m)
	}
	needUpstream := func() error {
		if r.Upstream == "" || r.Name == "" {
			return fmt.Errorf("resource of kind %q needs an upstream and a name", r.Kind)
		}
		return nil
	}
	switch r.Kind {
	case KindTool, KindPrompt, KindCompletion:
		if err := needUpstream(); err != nil {
			return types.Entity{}, err
		}
		typ := map[string]string{KindTool: TypeTool, KindPrompt: TypePrompt, KindCompletion: TypeCompletion}[r.Kind]
		uid := types.NewEntityUID(types.EntityType(typ), types.String(r.Upstream+"/"+r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs()}, nil
	case KindResource:
		if err := needUpstream(); err != nil {
			return types.Entity{}, err
		}
		uid := types.NewEntityUID(TypeResource, types.String(r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs("uri", r.Name)}, nil
	case KindTask:
		if r.Name == "" {
			return types.Entity{}, fmt.Errorf("resource of kind %q needs a name (the task id)", r.Kind)
		}
		uid := types.NewEntityUID(TypeTask, types.String(r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs("id", r.Name)}, nil
	case KindUpstream, KindClientRequest:
		if r.Upstream == "" {
			return types.Entity{}, fmt.Errorf("resource of kind %q needs an upstream", r.Kind)
		}
		return upstreamEntity(r.Upstream), nil
	case "":
		return types.Entity{}, fmt.Errorf("empty resource kind")
	}
	return types.Entity{}, fmt.Errorf("unknown resource kind %q", r.Kind)
}
