package policy

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
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
	"sampling/createMessage":   {"client-requests"},
	"elicitation/create":       {"client-requests"},
	"roots/list":               {"client-requests"},
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
	req      types.Request
	entities requestEntities
}

func (r *Request) toCedar(actions types.EntityMap, now time.Time) (*cedarRequest, error) {
	cr := &cedarRequest{entities: requestEntities{actions: actions}}
	if r.Action == "" {
		return nil, fmt.Errorf("empty action")
	}
	cr.req.Action = actionUID(r.Action)

	var idpParents types.EntityUIDSet
	if r.Principal.IdP != "" {
		idp := types.NewEntityUID(TypeIdP, types.String(r.Principal.IdP))
		idpParents = types.NewEntityUIDSet(idp)
		cr.entities.add(types.Entity{UID: idp})
	}
	var clientUID types.EntityUID
	if r.Principal.Client.ID != "" {
		clientUID = types.NewEntityUID(TypeClient, types.String(r.Principal.Client.ID))
		var parents types.EntityUIDSet
		if r.Principal.User == "" {
			parents = idpParents
		}
		cr.entities.add(types.Entity{UID: clientUID, Parents: parents, Attributes: clientAttributes(&r.Principal.Client, r.ClientMetadata)})
	}
	switch {
	case r.Principal.User != "":
		uid := types.NewEntityUID(TypeUser, types.String(r.Principal.User))
		cr.entities.add(types.Entity{UID: uid, Parents: idpParents, Attributes: types.NewRecord(types.RecordMap{
			"id": types.String(r.Principal.User),
		})})
		cr.req.Principal = uid
	case r.Principal.Client.ID != "":
		cr.req.Principal = clientUID
	default:
		cr.req.Principal = types.NewEntityUID(TypeAnonymous, "anonymous")
		cr.entities.add(types.Entity{UID: cr.req.Principal})
	}

	res, up, err := resourceEntities(&r.Resource)
	if err != nil {
		return nil, err
	}
	cr.req.Resource = res.UID
	cr.entities.add(res)
	if up.UID.Type != "" {
		cr.entities.add(up)
	}

	ctx := make(types.RecordMap, 12)
	if r.Arguments != nil || argumentActions[r.Action] {
		var conv argumentsConverter
		args := types.Record{}
		if r.Arguments != nil {
			if args, err = conv.convertArguments(r.Arguments); err != nil {
				return nil, err
			}
		}
		ctx["arguments"] = args
		ctx["path_traversal"] = types.Boolean(conv.traversal)
	}
	scopes := make([]types.Value, len(r.Scopes))
	for i, s := range r.Scopes {
		scopes[i] = types.String(s)
	}
	ctx["scopes"] = types.NewSet(scopes...)
	t := r.Time
	if t.IsZero() {
		t = now
	}
	t = t.UTC()
	ctx["time"] = types.NewDatetime(t)
	ctx["unix_time"] = types.Long(t.Unix())
	ctx["hour"] = types.Long(t.Hour())
	ctx["weekday"] = types.String(t.Weekday().String())
	if ip, ok := sourceIP(r.SourceAddr); ok {
		ctx["source_ip"] = ip
	}
	if clientUID.Type != "" {
		ctx["client"] = clientUID
		ctx["registration"] = types.String(r.Principal.Client.Registration)
	}
	if r.Principal.Session != "" {
		ctx["session"] = types.String(r.Principal.Session)
	}
	if r.Principal.IdP != "" {
		ctx["idp"] = types.String(r.Principal.IdP)
	}
	cr.req.Context = types.NewRecord(ctx)
	return cr, nil
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
// client's identity and selected fields of its metadata.
func clientAttributes(c *Client, md map[string]any) types.Record {
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

// resourceEntities returns the resource entity of r and, when r names one,
// its Upstream entity.
func resourceEntities(r *Resource) (res, up types.Entity, err error) {
	var parents types.EntityUIDSet
	if r.Upstream != "" {
		upUID := types.NewEntityUID(TypeUpstream, types.String(r.Upstream))
		up = types.Entity{UID: upUID, Attributes: types.NewRecord(types.RecordMap{"name": types.String(r.Upstream)})}
		parents = types.NewEntityUIDSet(upUID)
	}
	attrs := func(extra ...any) types.Record {
		m := types.RecordMap{
			"kind":     types.String(r.Kind),
			"name":     types.String(r.Name),
			"upstream": types.String(r.Upstream),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[types.String(extra[i].(string))] = types.String(extra[i+1].(string))
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
			return res, up, err
		}
		typ := map[string]string{KindTool: TypeTool, KindPrompt: TypePrompt, KindCompletion: TypeCompletion}[r.Kind]
		uid := types.NewEntityUID(types.EntityType(typ), types.String(r.Upstream+"/"+r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs()}, up, nil
	case KindResource:
		if err := needUpstream(); err != nil {
			return res, up, err
		}
		uid := types.NewEntityUID(TypeResource, types.String(r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs("uri", r.Name)}, up, nil
	case KindTask:
		if r.Name == "" {
			return res, up, fmt.Errorf("resource of kind %q needs a name (the task id)", r.Kind)
		}
		uid := types.NewEntityUID(TypeTask, types.String(r.Name))
		return types.Entity{UID: uid, Parents: parents, Attributes: attrs("id", r.Name)}, up, nil
	case KindUpstream, KindClientRequest:
		if r.Upstream == "" {
			return res, up, fmt.Errorf("resource of kind %q needs an upstream", r.Kind)
		}
		return up, types.Entity{}, nil
	case "":
		return res, up, fmt.Errorf("empty resource kind")
	}
	return res, up, fmt.Errorf("unknown resource kind %q", r.Kind)
}
