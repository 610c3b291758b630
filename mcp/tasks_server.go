// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

// Tasks on the server: the receiver of task-augmented tools/call, and the
// requestor of task-augmented sampling/createMessage and elicitation/create
// sent to the client.

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// serverTaskMethods returns the handlers of the tasks/* requests a client
// sends to the server. The method table registers them for protocol
// 2025-11-25 and later.
func serverTaskMethods() map[string]func(*ServerSession, context.Context, jsontext.Value) (any, error) {
	return map[string]func(*ServerSession, context.Context, jsontext.Value) (any, error){
		MethodTasksGet:    (*ServerSession).getTask,
		MethodTasksResult: (*ServerSession).taskResult,
		MethodTasksList:   (*ServerSession).listTasks,
		MethodTasksCancel: (*ServerSession).cancelTask,
	}
}

// taskOwner returns the owner of the tasks the session's client creates
// with ctx: the principal ServerOptions.TaskOwner names, or else the
// session itself (bound reports the latter).
func (ss *ServerSession) taskOwner(ctx context.Context) (owner string, bound bool) {
	if f := ss.server.opts.TaskOwner; f != nil {
		if o := f(ctx, ss); o != "" {
			return o, false
		}
	}
	return ss.server.tasks.sessionOwner(ss, ss.Done()), true
}

// CancelOwnerTasks cancels the tasks of owner (a principal named by
// ServerOptions.TaskOwner, for example one whose access was revoked) that
// are running in this process, with message as their status message. It
// reports how many it cancelled. Finished tasks stay retrievable until
// their time to live elapses.
func (s *Server) CancelOwnerTasks(ctx context.Context, owner, message string) (int, error) {
	if message == "" {
		message = "The task was cancelled by the server."
	}
	return s.tasks.cancelOwner(ctx, owner, message)
}

// taskCaps returns the tasks capabilities the server advertises.
func (ss *ServerSession) taskCaps() *ServerTasksCapabilities {
	if ss.ProtocolVersion() < Version20251125 {
		return nil
	}
	return ss.server.capabilities().Tasks
}

// acceptsToolTasks reports whether the server takes task-augmented
// tools/call on this session. When it does not, the spec has it ignore
// the task field and process the call normally.
func (ss *ServerSession) acceptsToolTasks() bool {
	c := ss.taskCaps()
	return c != nil && c.Requests != nil && c.Requests.Tools != nil && c.Requests.Tools.Call != nil
}

// callToolAsTask answers a task-augmented tools/call: it creates the task
// and runs the tool in the background.
func (ss *ServerSession) callToolAsTask(ctx context.Context, st *serverTool, p *CallToolParams) (any, error) {
	owner, bound := ss.taskOwner(ctx)
	start := &taskStart{
		owner:  owner,
		method: MethodToolsCall,
		meta:   p.Task,
		notify: ss.eng.notify,
		run: func(ctx context.Context) (any, error) {
			res, err := ss.runTool(ctx, st, p)
			if err != nil {
				return nil, err
			}
			return res, nil
		},
	}
	if bound {
		start.sessionDone = ss.Done()
	}
	return ss.server.tasks.start(ctx, start)
}

func (ss *ServerSession) getTask(ctx context.Context, params jsontext.Value) (any, error) {
	owner, _ := ss.taskOwner(ctx)
	return ss.server.tasks.get(ctx, owner, params)
}

func (ss *ServerSession) taskResult(ctx context.Context, params jsontext.Value) (any, error) {
	owner, _ := ss.taskOwner(ctx)
	return ss.server.tasks.result(ctx, owner, params, taskDeliverer{call: ss.eng.callRaw, notify: ss.eng.notify})
}

func (ss *ServerSession) listTasks(ctx context.Context, params jsontext.Value) (any, error) {
	if c := ss.taskCaps(); c == nil || c.List == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this server does not support tasks/list")
	}
	owner, _ := ss.taskOwner(ctx)
	return ss.server.tasks.list(ctx, owner, params, ss.server.opts.PageSize)
}

func (ss *ServerSession) cancelTask(ctx context.Context, params jsontext.Value) (any, error) {
	if c := ss.taskCaps(); c == nil || c.Cancel == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this server does not support tasks/cancel")
	}
	owner, _ := ss.taskOwner(ctx)
	return ss.server.tasks.cancelTask(ctx, owner, params)
}

// request sends a request to the client. When ctx is the context of a
// handler running as a task of this server, the request is related to the
// task: it carries the related-task _meta, the task is input_required until
// the answer arrives, and it travels on the requestor's tasks/result.
func (ss *ServerSession) request(ctx context.Context, method string, params, result any) error {
	rt := taskFromContext(ctx)
	if rt == nil || rt.recv != ss.server.tasks {
		return ss.eng.call(ctx, method, params, result)
	}
	raw, err := relatedTaskParams(params, rt.id)
	if err != nil {
		return fmt.Errorf("mcp: encoding %s params: %w", method, err)
	}
	resp, err := rt.ask(ctx, method, raw)
	if err != nil {
		return err
	}
	if result != nil {
		if err := json.Unmarshal(resp, result); err != nil {
			return fmt.Errorf("mcp: decoding %s result: %w", method, err)
		}
	}
	return nil
}

// notifyRelated sends a notification to the client; from a task's handler
// it is related to the task (see request).
func (ss *ServerSession) notifyRelated(ctx context.Context, method string, params any) error {
	rt := taskFromContext(ctx)
	if rt == nil || rt.recv != ss.server.tasks {
		return ss.eng.notify(ctx, method, params)
	}
	raw, err := relatedTaskParams(params, rt.id)
	if err != nil {
		return fmt.Errorf("mcp: encoding %s params: %w", method, err)
	}
	return rt.sendNote(ctx, method, raw, ss.eng.notify)
}

// relatedTaskParams encodes params with the related-task _meta.
func relatedTaskParams(params any, taskID string) (jsontext.Value, error) {
	raw, err := marshalParams(params)
	if err != nil {
		return nil, err
	}
	return setRelatedTaskMeta(raw, taskID)
}

// clientTasks is the requestor side of tasks the client runs.
func (ss *ServerSession) clientTasks() taskRequestor {
	return taskRequestor{
		call: ss.eng.call,
		caps: func() (bool, bool, bool) {
			c := ss.clientCaps().Tasks
			if ss.ProtocolVersion() < Version20251125 || c == nil {
				return false, false, false
			}
			return true, c.List != nil, c.Cancel != nil
		},
	}
}

// CreateMessageAsTask asks the client to sample a message as a task: the
// client answers at once with the task it created, and the result of the
// sampling is retrieved later (WaitClientTask, ClientTaskPayload). It
// needs protocol 2025-11-25 and the client's
// tasks.requests.sampling.createMessage capability.
func (ss *ServerSession) CreateMessageAsTask(ctx context.Context, params *CreateMessageParams, task *TaskMetadata) (*CreateTaskResult, error) {
	caps := ss.clientCaps()
	if caps.Sampling == nil {
		return nil, errors.New("mcp: client does not support sampling")
	}
	if (len(params.Tools) > 0 || params.ToolChoice != nil) && caps.Sampling.Tools == nil {
		return nil, errors.New("mcp: client does not support tools in sampling")
	}
	if t := caps.Tasks; ss.ProtocolVersion() < Version20251125 || t == nil || t.Requests == nil || t.Requests.Sampling == nil || t.Requests.Sampling.CreateMessage == nil {
		return nil, fmt.Errorf("mcp: task-augmented %s: %w", MethodSamplingCreateMessage, ErrTasksNotSupported)
	}
	p := *params
	p.Task = taskOrDefault(task)
	return ss.clientTasks().create(ctx, MethodSamplingCreateMessage, &p)
}

// ElicitAsTask asks the client to elicit information from its user as a
// task (see CreateMessageAsTask). It needs protocol 2025-11-25 and the
// client's tasks.requests.elicitation.create capability.
func (ss *ServerSession) ElicitAsTask(ctx context.Context, params *ElicitParams, task *TaskMetadata) (*CreateTaskResult, error) {
	caps := ss.clientCaps()
	if caps.Elicitation == nil {
		return nil, errors.New("mcp: client does not support elicitation")
	}
	if params.Mode == ElicitationModeURL && caps.Elicitation.URL == nil {
		return nil, errors.New("mcp: client does not support URL-mode elicitation")
	}
	if t := caps.Tasks; ss.ProtocolVersion() < Version20251125 || t == nil || t.Requests == nil || t.Requests.Elicitation == nil || t.Requests.Elicitation.Create == nil {
		return nil, fmt.Errorf("mcp: task-augmented %s: %w", MethodElicitationCreate, ErrTasksNotSupported)
	}
	p := *params
	p.Task = taskOrDefault(task)
	return ss.clientTasks().create(ctx, MethodElicitationCreate, &p)
}

func taskOrDefault(t *TaskMetadata) *TaskMetadata {
	if t == nil {
		return &TaskMetadata{}
	}
	c := *t
	return &c
}

// GetClientTask asks the client for the state of one of its tasks
// (tasks/get).
func (ss *ServerSession) GetClientTask(ctx context.Context, params *GetTaskParams) (*GetTaskResult, error) {
	return ss.clientTasks().get(ctx, params)
}

// ClientTaskPayload retrieves the result of a client task (tasks/result):
// it blocks until the task is terminal and returns the raw JSON result of
// the task's request, or its JSON-RPC error.
func (ss *ServerSession) ClientTaskPayload(ctx context.Context, params *GetTaskPayloadParams) (jsontext.Value, error) {
	return ss.clientTasks().payload(ctx, params)
}

// ListClientTasks lists one page of the client's tasks (tasks/list).
func (ss *ServerSession) ListClientTasks(ctx context.Context, params *ListTasksParams) (*ListTasksResult, error) {
	return ss.clientTasks().list(ctx, params)
}

// ClientTasks iterates over all of the client's tasks, page by page.
func (ss *ServerSession) ClientTasks(ctx context.Context) iter.Seq2[*Task, error] {
	return paginate(ctx, func(cursor string) ([]*Task, string, error) {
		r, err := ss.ListClientTasks(ctx, &ListTasksParams{Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return r.Tasks, r.NextCursor, nil
	})
}

// CancelClientTask cancels a client task (tasks/cancel).
func (ss *ServerSession) CancelClientTask(ctx context.Context, params *CancelTaskParams) (*CancelTaskResult, error) {
	return ss.clientTasks().cancelTask(ctx, params)
}

// PollClientTask polls a client task with tasks/get, at the interval the
// client suggests, until it is terminal or input_required, and returns its
// last state. onStatus, if not nil, sees every state polled.
func (ss *ServerSession) PollClientTask(ctx context.Context, taskID string, onStatus func(*Task)) (*Task, error) {
	return ss.clientTasks().poll(ctx, taskID, onStatus)
}

// WaitClientTask waits for a client task to finish (polling as
// PollClientTask does, then tasks/result) and decodes the result of its
// request into result (a *CreateMessageResult or *ElicitResult) unless
// result is nil. A request that failed is returned as its error.
func (ss *ServerSession) WaitClientTask(ctx context.Context, taskID string, result any) error {
	return ss.clientTasks().wait(ctx, taskID, result)
}
