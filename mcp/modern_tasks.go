package mcp

import (
	"context"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ExtensionTasks is the identifier of the Tasks extension of revision
// 2026-07-28, which replaces the core tasks of 2025-11-25.
const ExtensionTasks = "io.modelcontextprotocol/tasks"

// MethodTasksUpdate is the Tasks extension's method for client input to a
// task.
const MethodTasksUpdate = "tasks/update"

// serveTasksExtension serves the Tasks extension's methods for modern
// requests. The extension is not implemented yet: the server does not
// advertise it, and its methods are unknown.
func (ss *ServerSession) serveTasksExtension(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (any, error) {
	return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q not found: this server does not implement the %s extension", req.Method, ExtensionTasks)
}
