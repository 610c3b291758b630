package mcp

// The client side of the Tasks extension (io.modelcontextprotocol/tasks)
// of revision 2026-07-28: a tools/call the server turns into a task
// returns a CreateTaskResult; the client polls tasks/get, answers input
// requests with tasks/update and may cancel with tasks/cancel.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Bounds of the client's task polling.
const (
	// MinTaskPollInterval and MaxTaskPollInterval clamp the poll interval
	// a server suggests (pollIntervalMs); without a suggestion the client
	// polls every DefaultExtensionTaskPollInterval.
	MinTaskPollInterval = 10 * time.Millisecond
	MaxTaskPollInterval = 5 * time.Second
)

// ErrTaskFailed and ErrTaskCancelled are the errors of a task that ended
// without a result (wrapped with the server's error for a failed task).
var (
	ErrTaskFailed    = errors.New("mcp: the task failed")
	ErrTaskCancelled = errors.New("mcp: the task was cancelled")
)

// ExtensionTaskState is a task's state as tasks/get shows it.
type ExtensionTaskState struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"` // working, input_required, completed, failed, cancelled
	StatusMessage string `json:"statusMessage,omitzero"`
	CreatedAt     string `json:"createdAt,omitzero"`
	LastUpdatedAt string `json:"lastUpdatedAt,omitzero"`
	TTLMs         *int64 `json:"ttlMs,omitzero"`
	// PollIntervalMs is the polling interval the server suggests.
	PollIntervalMs *int64 `json:"pollIntervalMs,omitzero"`
	// InputRequests are the requests of an input_required task, by key.
	InputRequests map[string]*rawInputRequest `json:"inputRequests,omitzero"`
	// Result is the final result of a completed task.
	Result jsontext.Value `json:"result,omitzero"`
	// Error is the error of a failed task.
	Error *jsonrpc.Error `json:"error,omitzero"`
}

// Terminal reports whether the task has ended.
func (s *ExtensionTaskState) Terminal() bool {
	return s.Status == "completed" || s.Status == "failed" || s.Status == "cancelled"
}

// ExtensionTask is a handle on a task of the Tasks extension.
type ExtensionTask struct {
	// ID is the task's id.
	ID string
	// PollInterval is how often Wait polls (the server's suggestion,
	// clamped to [MinTaskPollInterval, MaxTaskPollInterval]).
	PollInterval time.Duration

	cs *ClientSession
	m  *modernClient
}

// taskFrom makes the handle of the task a CreateTaskResult names.
func (cs *ClientSession) taskFrom(m *modernClient, raw jsontext.Value) (*ExtensionTask, error) {
	var st ExtensionTaskState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("mcp: decoding a task: %w", err)
	}
	if st.TaskID == "" {
		return nil, errors.New("mcp: the server created a task without taskId")
	}
	t := &ExtensionTask{ID: st.TaskID, PollInterval: DefaultExtensionTaskPollInterval, cs: cs, m: m}
	t.notePoll(&st)
	return t, nil
}

func (t *ExtensionTask) notePoll(st *ExtensionTaskState) {
	if st.PollIntervalMs == nil {
		return
	}
	t.PollInterval = min(max(time.Duration(*st.PollIntervalMs)*time.Millisecond, MinTaskPollInterval), MaxTaskPollInterval)
}

// CallToolTask calls a tool and, if the server makes the call a task,
// returns the task's handle instead of waiting for it; otherwise it
// returns the result. The Tasks extension must be declared
// (ClientOptions.Capabilities.Extensions) and the session modern.
func (cs *ClientSession) CallToolTask(ctx context.Context, params *CallToolParams) (*ExtensionTask, *CallToolResult, error) {
	m := cs.modernState()
	if m == nil {
		return nil, nil, errors.New("mcp: CallToolTask needs a 2026-07-28 session")
	}
	raw, err := marshalParams(params)
	if err != nil {
		return nil, nil, err
	}
	var t *ExtensionTask
	res, err := cs.modernCall(context.WithValue(ctx, taskHandleKey{}, &t), m, MethodToolsCall, raw)
	if err != nil {
		return nil, nil, err
	}
	if t != nil {
		return t, nil, nil
	}
	out := new(CallToolResult)
	if err := json.Unmarshal(res, out); err != nil {
		return nil, nil, fmt.Errorf("mcp: decoding %s result: %w", MethodToolsCall, err)
	}
	return nil, out, nil
}

// taskHandleKey is the context key of the **ExtensionTask in which
// modernCall leaves a task instead of waiting for it (CallToolTask).
type taskHandleKey struct{}

// taskCall sends tasks/get, tasks/update or tasks/cancel.
func (t *ExtensionTask) taskCall(ctx context.Context, method string, params map[string]any) (jsontext.Value, error) {
	params["taskId"] = t.ID
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	p, err := t.cs.envelope(t.m, raw, nil)
	if err != nil {
		return nil, err
	}
	res, err := t.cs.engine().callRaw(withRequestHeaders(ctx, t.m.httpHeaders(method, p)), method, p)
	return res, modernError(err)
}

// Get returns the task's state (tasks/get).
func (t *ExtensionTask) Get(ctx context.Context) (*ExtensionTaskState, error) {
	raw, err := t.taskCall(ctx, MethodTasksGet, map[string]any{})
	if err != nil {
		return nil, err
	}
	st := new(ExtensionTaskState)
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("mcp: decoding %s result: %w", MethodTasksGet, err)
	}
	t.notePoll(st)
	return st, nil
}

// Update answers some of the task's input requests (tasks/update).
func (t *ExtensionTask) Update(ctx context.Context, responses map[string]jsontext.Value) error {
	_, err := t.taskCall(ctx, MethodTasksUpdate, map[string]any{"inputResponses": responses})
	return err
}

// Cancel asks the server to cancel the task (tasks/cancel).
func (t *ExtensionTask) Cancel(ctx context.Context) error {
	_, err := t.taskCall(ctx, MethodTasksCancel, map[string]any{})
	return err
}

// Wait polls the task until it ends, answering its input requests with
// the client's handlers, and returns the tool's result. If ctx ends
// first, the task is cancelled.
func (t *ExtensionTask) Wait(ctx context.Context) (*CallToolResult, error) {
	raw, err := t.waitRaw(ctx)
	if err != nil {
		return nil, err
	}
	res := new(CallToolResult)
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, fmt.Errorf("mcp: decoding the task's result: %w", err)
	}
	return res, nil
}

// waitRaw is Wait with the raw result.
func (t *ExtensionTask) waitRaw(ctx context.Context) (jsontext.Value, error) {
	answered := map[string]bool{}
	for {
		st, err := t.Get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.cancelDetached(ctx)
			}
			return nil, err
		}
		switch st.Status {
		case "completed":
			return st.Result, nil
		case "failed":
			if st.Error != nil {
				return nil, fmt.Errorf("%w: %w", ErrTaskFailed, st.Error)
			}
			return nil, ErrTaskFailed
		case "cancelled":
			return nil, ErrTaskCancelled
		case "input_required":
			todo := map[string]*rawInputRequest{}
			for k, r := range st.InputRequests {
				if !answered[k] {
					todo[k] = r
				}
			}
			if len(todo) > 0 {
				answers, err := t.cs.answerInput(ctx, todo)
				if err != nil {
					return nil, err
				}
				if err := t.Update(ctx, answers); err != nil {
					return nil, err
				}
				for k := range todo {
					answered[k] = true
				}
				continue
			}
		}
		timer := time.NewTimer(t.PollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.cancelDetached(ctx)
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// cancelDetached cancels the task after ctx ended, with a short deadline of
// its own.
func (t *ExtensionTask) cancelDetached(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = t.Cancel(cctx)
}
