// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"github.com/go-json-experiment/json/jsontext"
)

// Task-augmented execution (SEP-1686).

// TaskStatus is the state of a task.
type TaskStatus string

// Task states. TaskStatusCompleted, TaskStatusFailed and TaskStatusCancelled
// are terminal.
const (
	TaskStatusWorking       TaskStatus = "working"
	TaskStatusInputRequired TaskStatus = "input_required"
	TaskStatusCompleted     TaskStatus = "completed"
	TaskStatusFailed        TaskStatus = "failed"
	TaskStatusCancelled     TaskStatus = "cancelled"
)

// IsTerminal reports whether s is a terminal state (completed, failed or
// cancelled).
func (s TaskStatus) IsTerminal() bool {
	switch s {
	case TaskStatusCompleted, TaskStatusFailed, TaskStatusCancelled:
		return true
	}
	return false
}

// TaskMetadata is the "task" field of a request's params: it asks the
// receiver to run the request as a task.
type TaskMetadata struct {
	// TTL is the requested retention of the task from creation, in
	// milliseconds; 0 means no preference.
	TTL int64 `json:"ttl,omitzero"`
}

// Task is the data associated with a task.
type Task struct {
	// TaskID is the task's identifier.
	TaskID string `json:"taskId"`
	// Status is the task's current state.
	Status TaskStatus `json:"status"`
	// StatusMessage is a human-readable description of the current state.
	StatusMessage string `json:"statusMessage,omitzero"`
	// CreatedAt is the ISO 8601 time the task was created.
	CreatedAt string `json:"createdAt"`
	// LastUpdatedAt is the ISO 8601 time the task was last updated.
	LastUpdatedAt string `json:"lastUpdatedAt"`
	// TTL is the actual retention from creation in milliseconds; nil (JSON
	// null) means unlimited. The member is always present.
	TTL *int64 `json:"ttl"`
	// PollInterval is the suggested polling interval in milliseconds.
	PollInterval int64 `json:"pollInterval,omitzero"`
}

// CreateTaskResult is the result of a task-augmented request: the task that
// was created instead of the request's ordinary result.
type CreateTaskResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Task is the created task.
	Task Task `json:"task"`
}

// GetTaskParams are the params of tasks/get.
type GetTaskParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// TaskID is the task to query.
	TaskID string `json:"taskId"`
}

// GetTaskResult is the result of tasks/get: the task.
type GetTaskResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Task holds the task's fields, inlined.
	Task
}

// GetTaskPayloadParams are the params of tasks/result.
type GetTaskPayloadParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// TaskID is the task whose result to retrieve.
	TaskID string `json:"taskId"`
}

// GetTaskPayloadResult is the result of tasks/result: the result of the
// original request (for example a CallToolResult), kept as raw JSON for the
// caller to decode into the right type.
type GetTaskPayloadResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Payload holds the other members of the result as a JSON object, byte
	// for byte.
	Payload jsontext.Value `json:",embed"`
}

// ListTasksParams are the params of tasks/list.
type ListTasksParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Cursor is the opaque position to continue listing from.
	Cursor string `json:"cursor,omitzero"`
}

// ListTasksResult is the result of tasks/list.
type ListTasksResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// NextCursor is the position after the last returned task, if any.
	NextCursor string `json:"nextCursor,omitzero"`
	// Tasks are the tasks.
	Tasks []*Task `json:"tasks"`
}

// CancelTaskParams are the params of tasks/cancel.
type CancelTaskParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// TaskID is the task to cancel.
	TaskID string `json:"taskId"`
}

// CancelTaskResult is the result of tasks/cancel: the task after
// cancellation.
type CancelTaskResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Task holds the task's fields, inlined.
	Task
}

// TaskStatusNotificationParams are the params of notifications/tasks/status:
// the task's new state.
type TaskStatusNotificationParams struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// Task holds the task's fields, inlined.
	Task
}
