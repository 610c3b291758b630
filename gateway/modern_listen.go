package gateway

import (
	"context"
	"errors"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// subscriptions/listen for modern clients: the stream that replaces the
// legacy GET stream and resources/subscribe, fed from what upstreams send
// (relayNotification), governed like them: a listener hears only of its
// own principal's upstream sessions (list_changed of the principal's
// catalogue), and of a resource only if subscribing to it was admitted
// (the resources/subscribe entry of the table: the URI must be visible to
// the principal and the action allowed; decided and completed records as
// for a legacy subscription). URIs that were not admitted are left out
// of the acknowledged filter. The stream lives until the client closes
// it; each counts against the stream limits like any POST.
//
// The Tasks extension adds taskIds to the filter: each must be a task of
// the principal that the tasks/get entry of the table admits (decided and
// completed records, as for a tasks/get); the others are left out of the
// acknowledgement. Whenever the gateway notes a new status of such a task
// (the watcher, a notification, a client's request: noteStatus), the
// stream gets notifications/tasks with the task as tasks/get would show
// it (gateway id, the result or error inlined when the gateway kept it).
// List changes the gateway itself makes (an upstream joins or leaves, a
// reload, a tool approved) reach every listener that opted in to them.

// notificationTasks is the Tasks extension's status notification.
const notificationTasks = "notifications/tasks"

// modernListener is one open subscriptions/listen stream.
type modernListener struct {
	principal string
	filter    mcp.SubscriptionFilter
	uris      map[string]bool
	tasks     map[string]bool     // gateway task ids (the Tasks extension)
	taskq     chan jsontext.Value // notifications/tasks params, sent by the stream's own goroutine
	id        jsontext.Value      // the listen request's id: the subscription id
	send      func(method string, params jsontext.Value)
}

// listeners holds the open streams by principal.
type listeners struct {
	mu sync.Mutex
	by map[string]map[*modernListener]struct{}
}

func (ls *listeners) add(l *modernListener) func() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.by == nil {
		ls.by = make(map[string]map[*modernListener]struct{})
	}
	if ls.by[l.principal] == nil {
		ls.by[l.principal] = make(map[*modernListener]struct{})
	}
	ls.by[l.principal][l] = struct{}{}
	return func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		delete(ls.by[l.principal], l)
		if len(ls.by[l.principal]) == 0 {
			delete(ls.by, l.principal)
		}
	}
}

// notify sends an upstream's notification to the principal's listeners
// that opted in to it (uri: the resource of notifications/resources/updated).
func (ls *listeners) notify(principal, method, uri string, params jsontext.Value) {
	ls.mu.Lock()
	var to []*modernListener
	for l := range ls.by[principal] {
		if l.wants(method, uri) {
			to = append(to, l)
		}
	}
	ls.mu.Unlock()
	for _, l := range to {
		if p, err := setSubscriptionID(params, l.id); err == nil {
			l.send(method, p)
		}
	}
}

// notifyAll sends a list change the gateway itself made to every
// listener that opted in to it.
func (ls *listeners) notifyAll(method string) {
	ls.mu.Lock()
	var to []*modernListener
	for _, set := range ls.by {
		for l := range set {
			if l.wants(method, "") {
				to = append(to, l)
			}
		}
	}
	ls.mu.Unlock()
	for _, l := range to {
		if p, err := setSubscriptionID(nil, l.id); err == nil {
			l.send(method, p)
		}
	}
}

// taskListeners returns the principal's listeners of task id.
func (ls *listeners) taskListeners(principal, id string) []*modernListener {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var to []*modernListener
	for l := range ls.by[principal] {
		if l.tasks[id] {
			to = append(to, l)
		}
	}
	return to
}

// wants reports whether the listener opted in to method (for uri).
func (l *modernListener) wants(method, uri string) bool {
	switch method {
	case mcp.NotificationToolsListChanged:
		return l.filter.ToolsListChanged
	case mcp.NotificationPromptsListChanged:
		return l.filter.PromptsListChanged
	case mcp.NotificationResourcesListChanged:
		return l.filter.ResourcesListChanged
	case mcp.NotificationResourcesUpdated:
		return l.uris[uri]
	}
	return false
}

// setSubscriptionID sets _meta (replaced whole: the upstream's own _meta
// is not the client's business) to the subscription id.
func setSubscriptionID(params, id jsontext.Value) (jsontext.Value, error) {
	meta := jsontext.Value(`{"` + mcp.MetaSubscriptionID + `":` + string(id) + `}`)
	if len(params) == 0 || params.Kind() != '{' {
		params = jsontext.Value("{}")
	}
	return withValue(params, "_meta", meta)
}

// listen serves a modern subscriptions/listen: each resource URI passes
// admission as a resources/subscribe, the acknowledgement names what is
// honoured, then notifications flow until the client goes away.
func (g *Gateway) listen(ctx context.Context, c *call) (any, error) {
	var p mcp.SubscriptionsListenParams
	if err := json.Unmarshal(c.params, &p); err != nil {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
	}
	if len(p.Notifications.ResourceSubscriptions) > mcp.MaxResourceSubscriptions {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "subscriptions/listen: at most %d resource subscriptions per stream", mcp.MaxResourceSubscriptions))
	}
	var ext struct {
		Notifications struct {
			TaskIDs []string `json:"taskIds"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(c.params, &ext); err != nil {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
	}
	if len(ext.Notifications.TaskIDs) > 0 && !hasTasksExtension(ctx) {
		return nil, g.refuse(ctx, c, outcomeRefused, missingTasksExtension("subscriptions/listen with taskIds"))
	}
	if len(ext.Notifications.TaskIDs) > maxListenTasks {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "subscriptions/listen: at most %d task ids per stream", maxListenTasks))
	}
	id, ok := mcp.RequestIDFromContext(ctx)
	if !ok {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "subscriptions/listen outside a modern request")
	}
	caps := g.mergedCapabilities()
	f := p.Notifications
	f.ToolsListChanged = f.ToolsListChanged && caps.Tools != nil
	f.PromptsListChanged = f.PromptsListChanged && caps.Prompts != nil
	f.ResourcesListChanged = f.ResourcesListChanged && caps.Resources != nil
	uris := f.ResourceSubscriptions
	f.ResourceSubscriptions = nil
	l := &modernListener{principal: c.ds.principal, uris: make(map[string]bool), tasks: make(map[string]bool),
		taskq: make(chan jsontext.Value, listenTaskQueue), id: jsontext.Value(id.AppendJSON(nil))}
	var taskIDs []string
	for _, tid := range ext.Notifications.TaskIDs {
		if !l.tasks[tid] && g.admitTaskListen(ctx, c.ds, tid) {
			l.tasks[tid] = true
			taskIDs = append(taskIDs, tid)
		}
	}
	for _, uri := range uris {
		if l.uris[uri] {
			continue
		}
		if g.admitSubscription(ctx, c.ds, uri) {
			l.uris[uri] = true
			f.ResourceSubscriptions = append(f.ResourceSubscriptions, uri)
		}
	}
	l.filter = f
	if g.enforced() {
		_ = g.auditAppend(ctx, &audit.Record{User: c.ds.principal, Client: c.ds.clientID, Action: mcp.MethodSubscriptionsListen,
			Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Phase: audit.PhaseDecided})
	}
	var sendMu sync.Mutex
	ss := c.ds.ss
	l.send = func(method string, params jsontext.Value) {
		sendMu.Lock()
		defer sendMu.Unlock()
		_ = ss.Notify(ctx, method, params)
	}
	type ackFilter struct {
		mcp.SubscriptionFilter
		TaskIDs []string `json:"taskIds,omitzero"`
	}
	ack, err := json.Marshal(struct {
		Notifications ackFilter `json:"notifications"`
	}{ackFilter{f, taskIDs}})
	if err != nil {
		return nil, err
	}
	if ack, err = setSubscriptionID(ack, l.id); err != nil {
		return nil, err
	}
	// Registered under the send lock, so that no notification overtakes
	// the acknowledgement.
	sendMu.Lock()
	remove := g.listeners.add(l)
	err = ss.Notify(ctx, mcp.NotificationSubscriptionsAcknowledged, ack)
	sendMu.Unlock()
	defer remove()
	if err != nil {
		return nil, err
	}
	// Task notifications are sent from here, so that a client that reads
	// slowly holds up its own stream only, not the task watcher.
	for done := false; !done; {
		select {
		case p := <-l.taskq:
			l.send(notificationTasks, p)
		case <-ctx.Done():
			done = true
		}
	}
	return &struct {
		Meta mcp.Meta `json:"_meta"`
	}{mcp.Meta{mcp.MetaSubscriptionID: l.id}}, nil
}

// admitSubscription passes one URI of a listen request through the
// resources/subscribe entry of the table (resolve, policy, limits, audit)
// and subscribes the principal's upstream session to it. It reports
// whether the subscription was admitted.
func (g *Gateway) admitSubscription(ctx context.Context, ds *downstreamSession, uri string) bool {
	params, err := json.Marshal(map[string]string{"uri": uri})
	if err != nil {
		return false
	}
	sc := &call{ds: ds, method: mcp.MethodResourcesSubscribe, params: params}
	if sc.p, err = jsonraw.Parse(params); err != nil {
		return false
	}
	if err := resolveResource(g, ctx, sc); err != nil {
		outcome := outcomeUnknown
		var re *refusal
		if errors.As(err, &re) {
			outcome, err = re.outcome, re.err
		}
		_ = g.refuse(ctx, sc, outcome, err)
		return false
	}
	_, err = g.govern(ctx, sc, func() (any, error) {
		if caps := sc.up.capabilities(); caps == nil || caps.Resources == nil || !caps.Resources.Subscribe {
			return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "upstream %s offers no resource subscriptions", sc.up.cfg.Name)
		}
		cs, err := sc.up.session(ctx, ds.principal)
		if err != nil {
			return nil, upstreamError(sc.up, err)
		}
		return cs.CallRaw(ctx, mcp.MethodResourcesSubscribe, sc.encode())
	})
	return err == nil
}

// maxListenTasks bounds the task ids one subscriptions/listen request
// may name (as mcp.MaxResourceSubscriptions bounds its URIs).
const maxListenTasks = 1000

// admitTaskListen passes one task id of a listen request through the
// tasks/get entry of the table: the task must be the principal's, and
// reading it allowed. It reports whether it was admitted.
func (g *Gateway) admitTaskListen(ctx context.Context, ds *downstreamSession, id string) bool {
	params, err := json.Marshal(map[string]string{"taskId": id})
	if err != nil {
		return false
	}
	tc := &call{ds: ds, method: mcp.MethodTasksGet, params: params}
	if tc.p, err = jsonraw.Parse(params); err != nil {
		return false
	}
	if err := resolveTask(g, ctx, tc); err != nil {
		outcome := outcomeUnknown
		var re *refusal
		if errors.As(err, &re) {
			outcome, err = re.outcome, re.err
		}
		_ = g.refuse(ctx, tc, outcome, err)
		return false
	}
	_, err = g.govern(ctx, tc, func() (any, error) { return nil, nil })
	return err == nil
}

// taskStatusToListeners sends notifications/tasks for a task whose new
// status the gateway noted to its owner's listeners of it.
func (g *Gateway) taskStatusToListeners(rec *store.GatewayTask) {
	to := g.listeners.taskListeners(rec.Principal, rec.ID)
	if len(to) == 0 {
		return
	}
	t, err := taskFromRecord(rec)
	if err != nil {
		return
	}
	out := modernTaskState(t)
	if isTerminal(rec.Status) && rec.ResultSealed != nil {
		res, ok, err := g.storedResult(rec)
		var we *jsonrpc.Error
		switch {
		case ok && err == nil:
			out["status"] = string(mcp.TaskStatusCompleted)
			out["result"] = withoutRelatedTask(res)
		case ok && errors.As(err, &we) && rec.Status == string(mcp.TaskStatusFailed):
			m := map[string]any{"code": we.Code, "message": we.Message}
			if len(we.Data) > 0 {
				m["data"] = we.Data
			}
			out["error"] = m
		}
	}
	params, err := json.Marshal(out, json.Deterministic(true))
	if err != nil {
		return
	}
	for _, l := range to {
		p, err := setSubscriptionID(params, l.id)
		if err != nil {
			continue
		}
		select {
		case l.taskq <- p:
		default:
			// The client does not keep up: this status is not sent (it
			// polls tasks/get, which is always right).
			g.logger.Debug("notifications/tasks dropped for a listener that does not keep up", "task", rec.ID)
		}
	}
}

// listenTaskQueue bounds the notifications/tasks waiting to be sent on one
// subscriptions/listen stream; past it, statuses are dropped.
const listenTaskQueue = 16

// listsChangedModern tells modern listeners of list changes the gateway
// itself made (methods: notifications/*/list_changed).
func (g *Gateway) listsChangedModern(methods ...string) {
	for _, m := range methods {
		g.listeners.notifyAll(m)
	}
}
