package mcp

// This file is a placeholder until the Tasks implementation lands; it will
// be replaced by tasks*.go.

import (
	"context"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// TaskStore keeps tasks.
type TaskStore interface{}

// MemoryTaskStoreOptions configure NewMemoryTaskStore.
type MemoryTaskStoreOptions struct{}

// NewMemoryTaskStore returns an in-memory TaskStore.
func NewMemoryTaskStore(*MemoryTaskStoreOptions) TaskStore { return struct{}{} }

func serverTaskMethods() map[string]func(*ServerSession, context.Context, jsontext.Value) (any, error) {
	return nil
}

func (ss *ServerSession) callToolAsTask(ctx context.Context, st *serverTool, p *CallToolParams) (any, error) {
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "tasks are not implemented yet")
}

func clientTaskMethods() map[string]func(*ClientSession, context.Context, jsontext.Value) (any, error) {
	return nil
}

func (cs *ClientSession) runAsTask(ctx context.Context, method string, task *TaskMetadata, run func(context.Context) (any, error)) (any, error) {
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "tasks are not implemented yet")
}
