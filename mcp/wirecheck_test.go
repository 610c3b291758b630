package mcp

import (
	"context"
	"sync"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// requestDefs maps a method to the schema definition of its whole request
// (or notification) message, and resultDefs to that of its result.
var (
	requestDefs = map[string]string{
		MethodInitialize:                 "InitializeRequest",
		MethodPing:                       "PingRequest",
		MethodToolsList:                  "ListToolsRequest",
		MethodToolsCall:                  "CallToolRequest",
		MethodResourcesList:              "ListResourcesRequest",
		MethodResourcesTemplatesList:     "ListResourceTemplatesRequest",
		MethodResourcesRead:              "ReadResourceRequest",
		MethodResourcesSubscribe:         "SubscribeRequest",
		MethodResourcesUnsubscribe:       "UnsubscribeRequest",
		MethodPromptsList:                "ListPromptsRequest",
		MethodPromptsGet:                 "GetPromptRequest",
		MethodCompletionComplete:         "CompleteRequest",
		MethodLoggingSetLevel:            "SetLevelRequest",
		MethodSamplingCreateMessage:      "CreateMessageRequest",
		MethodElicitationCreate:          "ElicitRequest",
		MethodRootsList:                  "ListRootsRequest",
		MethodTasksGet:                   "GetTaskRequest",
		MethodTasksResult:                "GetTaskPayloadRequest",
		MethodTasksList:                  "ListTasksRequest",
		MethodTasksCancel:                "CancelTaskRequest",
		NotificationInitialized:          "InitializedNotification",
		NotificationCancelled:            "CancelledNotification",
		NotificationProgress:             "ProgressNotification",
		NotificationMessage:              "LoggingMessageNotification",
		NotificationResourcesListChanged: "ResourceListChangedNotification",
		NotificationResourcesUpdated:     "ResourceUpdatedNotification",
		NotificationPromptsListChanged:   "PromptListChangedNotification",
		NotificationToolsListChanged:     "ToolListChangedNotification",
		NotificationRootsListChanged:     "RootsListChangedNotification",
		NotificationTasksStatus:          "TaskStatusNotification",
		NotificationElicitationComplete:  "ElicitationCompleteNotification",
	}
	resultDefs = map[string]string{
		MethodInitialize:             "InitializeResult",
		MethodPing:                   "EmptyResult",
		MethodToolsList:              "ListToolsResult",
		MethodToolsCall:              "CallToolResult",
		MethodResourcesList:          "ListResourcesResult",
		MethodResourcesTemplatesList: "ListResourceTemplatesResult",
		MethodResourcesRead:          "ReadResourceResult",
		MethodResourcesSubscribe:     "EmptyResult",
		MethodResourcesUnsubscribe:   "EmptyResult",
		MethodPromptsList:            "ListPromptsResult",
		MethodPromptsGet:             "GetPromptResult",
		MethodCompletionComplete:     "CompleteResult",
		MethodLoggingSetLevel:        "EmptyResult",
		MethodSamplingCreateMessage:  "CreateMessageResult",
		MethodElicitationCreate:      "ElicitResult",
		MethodRootsList:              "ListRootsResult",
		MethodTasksGet:               "GetTaskResult",
		MethodTasksResult:            "GetTaskPayloadResult",
		MethodTasksList:              "ListTasksResult",
		MethodTasksCancel:            "CancelTaskResult",
	}
)

// checkTransport wraps a transport so that every message written through
// its connection is validated against the 2025-11-25 JSON Schema.
type checkTransport struct {
	t     testing.TB
	inner Transport
}

func (c *checkTransport) Connect(ctx context.Context) (Connection, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &checkConn{Connection: conn, t: c.t, methods: make(map[jsonrpc.ID]string)}, nil
}

type checkConn struct {
	Connection
	t       testing.TB
	mu      sync.Mutex
	methods map[jsonrpc.ID]string // incoming request id -> method
}

func (c *checkConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := c.Connection.Read(ctx)
	if req, ok := msg.(*jsonrpc.Request); ok && !req.IsNotification() {
		c.mu.Lock()
		c.methods[req.ID] = req.Method
		c.mu.Unlock()
	}
	return msg, err
}

func (c *checkConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		c.t.Errorf("encoding outgoing message: %v", err)
	} else {
		c.check(msg, data)
	}
	return c.Connection.Write(ctx, msg)
}

func (c *checkConn) check(msg jsonrpc.Message, data []byte) {
	c.t.Helper()
	switch m := msg.(type) {
	case *jsonrpc.Request:
		def, ok := requestDefs[m.Method]
		if !ok {
			def = "JSONRPCRequest"
			if m.IsNotification() {
				def = "JSONRPCNotification"
			}
		}
		schematest.Validate(c.t, def, data)
	case *jsonrpc.Response:
		c.mu.Lock()
		method := c.methods[m.ID]
		delete(c.methods, m.ID)
		c.mu.Unlock()
		if m.Error != nil {
			schematest.Validate(c.t, "JSONRPCErrorResponse", data)
			return
		}
		schematest.Validate(c.t, "JSONRPCResultResponse", data)
		def, ok := resultDefs[method]
		if !ok {
			return
		}
		if isCreateTaskResult(m.Result) {
			def = "CreateTaskResult"
		}
		schematest.Validate(c.t, def, m.Result)
	}
}

// isCreateTaskResult reports whether a result is a task-creation answer to
// a task-augmented request.
func isCreateTaskResult(raw jsontext.Value) bool {
	var probe struct {
		Task jsontext.Value `json:"task"`
	}
	return json.Unmarshal(raw, &probe) == nil && len(probe.Task) > 0
}

func TestCheckTransportCatchesInvalidMessages(t *testing.T) {
	ft := &fakeTB{}
	c := &checkConn{t: ft, methods: map[jsonrpc.ID]string{jsonrpc.Int64ID(1): MethodToolsCall}}
	bad := &jsonrpc.Response{ID: jsonrpc.Int64ID(1), Result: jsontext.Value(`{"content":"not an array"}`)}
	data, _ := jsonrpc.EncodeMessage(bad)
	c.check(bad, data)
	if !ft.failed {
		t.Error("an invalid CallToolResult was not reported")
	}
}

type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
