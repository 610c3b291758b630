// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

// Tasks on the client: the requestor of task-augmented tools/call, and the
// receiver of task-augmented sampling/createMessage and elicitation/create
// from the server.

import (
	"context"
	"fmt"
	"iter"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// clientTaskMethods returns the handlers of the tasks/* requests a server
// sends to the client.
func clientTaskMethods() map[string]func(*ClientSession, context.Context, jsontext.Value) (any, error) {
	return map[string]func(*ClientSession, context.Context, jsontext.Value) (any, error){
		MethodTasksGet:    (*ClientSession).getTask,
		MethodTasksResult: (*ClientSession).taskResult,
		MethodTasksList:   (*ClientSession).listTasks,
		MethodTasksCancel: (*ClientSession).cancelTask,
	}
}

// ownTaskCaps returns the tasks capabilities the client advertised on this
// session (nil below protocol 2025-11-25).
func (cs *ClientSession) ownTaskCaps() *ClientTasksCapabilities {
	if r := cs.InitializeResult(); r == nil || r.ProtocolVersion < Version20251125 {
		return nil
	}
	return cs.client.capabilities().Tasks
}

// acceptsTask reports whether the client takes method as a task.
func (cs *ClientSession) acceptsTask(method string) bool {
	c := cs.ownTaskCaps()
	if c == nil || c.Requests == nil {
		return false
	}
	switch method {
	case MethodSamplingCreateMessage:
		return c.Requests.Sampling != nil && c.Requests.Sampling.CreateMessage != nil
	case MethodElicitationCreate:
		return c.Requests.Elicitation != nil && c.Requests.Elicitation.Create != nil
	}
	return false
}

// taskOwner returns the owner of the tasks the client runs for this
// session's server: the session itself.
func (cs *ClientSession) taskOwner() string {
	return cs.client.tasks.sessionOwner(cs, cs.engine().done)
}

// runAsTask answers a task-augmented request from the server: it creates
// the task and runs the request in the background. The task ends with the
// session. If the client did not advertise task support for the method,
// the request is processed normally, as the spec asks.
func (cs *ClientSession) runAsTask(ctx context.Context, method string, task *TaskMetadata, run func(context.Context) (any, error)) (any, error) {
	if !cs.acceptsTask(method) {
		return run(ctx)
	}
	eng := cs.engine()
	return cs.client.tasks.start(ctx, &taskStart{
		owner:       cs.taskOwner(),
		method:      method,
		meta:        task,
		sessionDone: eng.done,
		notify:      eng.notify,
		run:         run,
	})
}

func (cs *ClientSession) requireTasks(method string) error {
	c := cs.ownTaskCaps()
	switch {
	case c == nil:
		return jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q not found", method)
	case method == MethodTasksList && c.List == nil:
		return jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this client does not support tasks/list")
	case method == MethodTasksCancel && c.Cancel == nil:
		return jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "this client does not support tasks/cancel")
	}
	return nil
}

func (cs *ClientSession) getTask(ctx context.Context, params jsontext.Value) (any, error) {
	if err := cs.requireTasks(MethodTasksGet); err != nil {
		return nil, err
	}
	return cs.client.tasks.get(ctx, cs.taskOwner(), params)
}

func (cs *ClientSession) taskResult(ctx context.Context, params jsontext.Value) (any, error) {
	if err := cs.requireTasks(MethodTasksResult); err != nil {
		return nil, err
	}
	eng := cs.engine()
	return cs.client.tasks.result(ctx, cs.taskOwner(), params, taskDeliverer{call: eng.callRaw, notify: eng.notify})
}

func (cs *ClientSession) listTasks(ctx context.Context, params jsontext.Value) (any, error) {
	if err := cs.requireTasks(MethodTasksList); err != nil {
		return nil, err
	}
	return cs.client.tasks.list(ctx, cs.taskOwner(), params, 100)
}

func (cs *ClientSession) cancelTask(ctx context.Context, params jsontext.Value) (any, error) {
	if err := cs.requireTasks(MethodTasksCancel); err != nil {
		return nil, err
	}
	return cs.client.tasks.cancelTask(ctx, cs.taskOwner(), params)
}

// echoRelatedTask returns a sampling or elicitation result, carrying the
// related-task _meta of the request it answers (a request a server's task
// sent), as the spec asks of responses related to a task.
func echoRelatedTask(req Meta, res any, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	id, ok := req.RelatedTask()
	if !ok {
		return res, nil
	}
	switch r := res.(type) {
	case *CreateMessageResult:
		if r != nil {
			r.Meta.SetRelatedTask(id)
		}
	case *ElicitResult:
		if r != nil {
			r.Meta.SetRelatedTask(id)
		}
	}
	return res, nil
}

// serverTasks is the requestor side of tasks the server runs.
func (cs *ClientSession) serverTasks() taskRequestor {
	return taskRequestor{
		call: cs.call,
		caps: func() (bool, bool, bool) {
			r := cs.InitializeResult()
			if r == nil || r.ProtocolVersion < Version20251125 || r.Capabilities.Tasks == nil {
				return false, false, false
			}
			c := r.Capabilities.Tasks
			return true, c.List != nil, c.Cancel != nil
		},
	}
}

// CallToolAsTask calls a tool as a task: the server answers at once with
// the task it created, and the tool's result is retrieved later (WaitTask,
// GetTaskResult). It needs protocol 2025-11-25 and the server's
// tasks.requests.tools.call capability; the tool itself must allow task
// execution (execution.taskSupport optional or required), or the server
// answers with error -32601. A progress token set in params.Meta stays
// valid for the task's lifetime; its notifications reach
// ClientOptions.ProgressHandler (WithProgress does not apply here, since
// the call returns before the work is done).
func (cs *ClientSession) CallToolAsTask(ctx context.Context, params *CallToolParams, task *TaskMetadata) (*CreateTaskResult, error) {
	r := cs.InitializeResult()
	if c := r.Capabilities.Tasks; r.ProtocolVersion < Version20251125 || c == nil || c.Requests == nil || c.Requests.Tools == nil || c.Requests.Tools.Call == nil {
		return nil, fmt.Errorf("mcp: task-augmented %s: %w", MethodToolsCall, ErrTasksNotSupported)
	}
	p := *params
	p.Task = taskOrDefault(task)
	return cs.serverTasks().create(ctx, MethodToolsCall, &p)
}

// GetTask returns the state of a task (tasks/get).
func (cs *ClientSession) GetTask(ctx context.Context, params *GetTaskParams) (*GetTaskResult, error) {
	return cs.serverTasks().get(ctx, params)
}

// GetTaskPayload retrieves the result of a task (tasks/result): it blocks
// until the task is terminal and returns the raw JSON result of the task's
// request (with the related-task _meta), or its JSON-RPC error. While the
// task needs input, the server's requests for it arrive during the call
// and are answered by the client's handlers. The call is subject to
// ClientOptions.RequestTimeout like any other; WaitTask retries a
// tasks/result that timed out.
func (cs *ClientSession) GetTaskPayload(ctx context.Context, params *GetTaskPayloadParams) (jsontext.Value, error) {
	return cs.serverTasks().payload(ctx, params)
}

// GetTaskResult is GetTaskPayload for a task that runs a tools/call,
// decoding the tool's result.
func (cs *ClientSession) GetTaskResult(ctx context.Context, params *GetTaskPayloadParams) (*CallToolResult, error) {
	raw, err := cs.GetTaskPayload(ctx, params)
	if err != nil {
		return nil, err
	}
	res := new(CallToolResult)
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, fmt.Errorf("mcp: decoding result of task %s: %w", params.TaskID, err)
	}
	return res, nil
}

// ListTasks lists one page of tasks (tasks/list).
func (cs *ClientSession) ListTasks(ctx context.Context, params *ListTasksParams) (*ListTasksResult, error) {
	return cs.serverTasks().list(ctx, params)
}

// Tasks iterates over all tasks, page by page.
func (cs *ClientSession) Tasks(ctx context.Context) iter.Seq2[*Task, error] {
	return paginate(ctx, func(cursor string) ([]*Task, string, error) {
		r, err := cs.ListTasks(ctx, &ListTasksParams{Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return r.Tasks, r.NextCursor, nil
	})
}

// CancelTask cancels a task (tasks/cancel). Cancelling a task that is
// already terminal is an error (-32602).
func (cs *ClientSession) CancelTask(ctx context.Context, params *CancelTaskParams) (*CancelTaskResult, error) {
	return cs.serverTasks().cancelTask(ctx, params)
}

// PollTask polls a task with tasks/get, at the interval the server
// suggests (pollInterval; one second without a suggestion), until it is
// terminal or input_required, and returns its last state. onStatus, if not
// nil, sees every state polled. A task that is input_required waits for
// the client to call tasks/result (GetTaskPayload, WaitTask).
func (cs *ClientSession) PollTask(ctx context.Context, taskID string, onStatus func(*Task)) (*Task, error) {
	return cs.serverTasks().poll(ctx, taskID, onStatus)
}

// WaitTask waits for a task to finish and decodes the result of its request
// into result (for a tools/call task a *CallToolResult) unless result is
// nil. It polls as PollTask does, then calls tasks/result, through which
// the server's requests arrive while the task needs input. A request that
// failed with a protocol error is returned as that error.
func (cs *ClientSession) WaitTask(ctx context.Context, taskID string, result any) error {
	return cs.serverTasks().wait(ctx, taskID, result)
}
