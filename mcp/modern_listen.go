package mcp

import (
	"context"
	"slices"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// SubscriptionFilter is the set of notifications a subscriptions/listen
// request opts in to.
type SubscriptionFilter struct {
	ToolsListChanged      bool     `json:"toolsListChanged,omitzero"`
	PromptsListChanged    bool     `json:"promptsListChanged,omitzero"`
	ResourcesListChanged  bool     `json:"resourcesListChanged,omitzero"`
	ResourceSubscriptions []string `json:"resourceSubscriptions,omitzero"`
}

// SubscriptionsListenParams are the params of subscriptions/listen.
type SubscriptionsListenParams struct {
	// Meta is the _meta field (the modern envelope).
	Meta Meta `json:"_meta,omitzero"`
	// Notifications are the notifications the client opts in to.
	Notifications SubscriptionFilter `json:"notifications"`
}

// MaxResourceSubscriptions bounds the resource URIs one
// subscriptions/listen request may name.
const MaxResourceSubscriptions = 1000

// listener is one open subscriptions/listen stream.
type listener struct {
	id     jsontext.Value // the listen request's id: the subscription id
	filter SubscriptionFilter
	uris   map[string]bool
	send   func(method string, params jsontext.Value) error
}

// wants reports whether the listener opted in to method (for uri).
func (l *listener) wants(method, uri string) bool {
	switch method {
	case NotificationToolsListChanged:
		return l.filter.ToolsListChanged
	case NotificationPromptsListChanged:
		return l.filter.PromptsListChanged
	case NotificationResourcesListChanged:
		return l.filter.ResourcesListChanged
	case NotificationResourcesUpdated:
		return l.uris[uri]
	}
	return false
}

// listenerSet is a server's open subscriptions/listen streams.
type listenerSet struct {
	mu  sync.Mutex
	all map[*listener]struct{}
}

func (ls *listenerSet) add(l *listener) {
	ls.mu.Lock()
	if ls.all == nil {
		ls.all = make(map[*listener]struct{})
	}
	ls.all[l] = struct{}{}
	ls.mu.Unlock()
}

func (ls *listenerSet) remove(l *listener) {
	ls.mu.Lock()
	delete(ls.all, l)
	ls.mu.Unlock()
}

// notify sends a notification to every listener that opted in to it, with
// the listener's subscription id in _meta. params is a JSON object or nil.
func (ls *listenerSet) notify(method, uri string, params jsontext.Value) {
	ls.mu.Lock()
	var to []*listener
	for l := range ls.all {
		if l.wants(method, uri) {
			to = append(to, l)
		}
	}
	ls.mu.Unlock()
	for _, l := range to {
		p, err := withSubscriptionID(params, l.id)
		if err == nil {
			l.send(method, p)
		}
	}
}

// withSubscriptionID adds the subscription id to the _meta of params.
func withSubscriptionID(params jsontext.Value, id jsontext.Value) (jsontext.Value, error) {
	if len(params) == 0 {
		params = jsontext.Value("{}")
	}
	members, err := objectMembers(params)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(members, func(m member) bool { return m.name == "_meta" })
	if i < 0 {
		members = append([]member{{"_meta", jsontext.Value(`{"` + MetaSubscriptionID + `":` + string(id) + `}`)}}, members...)
	} else {
		meta, err := objectMembers(members[i].value)
		if err != nil {
			return nil, err
		}
		meta = append(meta, member{MetaSubscriptionID, id})
		members[i].value = appendObject(nil, meta)
	}
	return appendObject(nil, members), nil
}

// listen serves subscriptions/listen: it acknowledges the subscription,
// then relays the notifications the client opted in to until the client
// goes away (ctx ends) or the server closes.
func (ss *ServerSession) listen(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (any, error) {
	var p SubscriptionsListenParams
	if err := unmarshalParams(req.Params, &p); err != nil {
		return nil, err
	}
	if len(p.Notifications.ResourceSubscriptions) > MaxResourceSubscriptions {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "subscriptions/listen: at most %d resource subscriptions per stream", MaxResourceSubscriptions)
	}
	caps := ss.server.capabilities()
	// Acknowledge what the server can honour.
	f := p.Notifications
	f.ToolsListChanged = f.ToolsListChanged && caps.Tools != nil && caps.Tools.ListChanged
	f.PromptsListChanged = f.PromptsListChanged && caps.Prompts != nil && caps.Prompts.ListChanged
	f.ResourcesListChanged = f.ResourcesListChanged && caps.Resources != nil && caps.Resources.ListChanged
	if caps.Resources == nil || !caps.Resources.Subscribe {
		f.ResourceSubscriptions = nil
	}
	id := jsontext.Value(req.ID.AppendJSON(nil))
	l := &listener{id: id, filter: f, uris: make(map[string]bool, len(f.ResourceSubscriptions))}
	for _, u := range f.ResourceSubscriptions {
		l.uris[u] = true
	}
	var sendMu sync.Mutex
	l.send = func(method string, params jsontext.Value) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return ss.eng.notify(ctx, method, params)
	}
	ack, err := json.Marshal(struct {
		Notifications SubscriptionFilter `json:"notifications"`
	}{f})
	if err != nil {
		return nil, err
	}
	ackParams, err := withSubscriptionID(ack, id)
	if err != nil {
		return nil, err
	}
	// Register under the send lock, so that no notification overtakes
	// the acknowledgement.
	sendMu.Lock()
	ss.server.listeners.add(l)
	err = ss.eng.notify(ctx, NotificationSubscriptionsAcknowledged, ackParams)
	sendMu.Unlock()
	defer ss.server.listeners.remove(l)
	if err != nil {
		return nil, err
	}
	<-ctx.Done()
	return &struct {
		Meta Meta `json:"_meta"`
	}{Meta{MetaSubscriptionID: id}}, nil
}
