// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

// GetMeta and SetMeta give uniform access to the _meta field of every type
// that has one, for code that handles params and results generically (for
// example through an interface{ GetMeta() Meta }).

// GetMeta returns the _meta field.
func (x *TextContent) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *TextContent) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ImageContent) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ImageContent) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *AudioContent) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *AudioContent) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ResourceLink) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ResourceLink) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *EmbeddedResource) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *EmbeddedResource) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ToolUseContent) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ToolUseContent) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ToolResultContent) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ToolResultContent) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ResourceContents) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ResourceContents) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *InitializeParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *InitializeParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *InitializeResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *InitializeResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *InitializedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *InitializedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *PingParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *PingParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *EmptyResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *EmptyResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *PaginatedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *PaginatedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *PaginatedResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *PaginatedResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CancelledNotificationParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CancelledNotificationParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ProgressNotificationParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ProgressNotificationParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *Tool) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *Tool) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListToolsParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListToolsParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListToolsResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListToolsResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CallToolParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CallToolParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CallToolResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CallToolResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ToolListChangedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ToolListChangedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *Resource) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *Resource) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ResourceTemplate) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ResourceTemplate) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListResourcesParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListResourcesParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListResourcesResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListResourcesResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListResourceTemplatesParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListResourceTemplatesParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListResourceTemplatesResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListResourceTemplatesResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ReadResourceParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ReadResourceParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ReadResourceResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ReadResourceResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *SubscribeParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *SubscribeParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *UnsubscribeParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *UnsubscribeParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ResourceUpdatedNotificationParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ResourceUpdatedNotificationParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ResourceListChangedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ResourceListChangedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *Prompt) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *Prompt) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListPromptsParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListPromptsParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListPromptsResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListPromptsResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetPromptParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetPromptParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetPromptResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetPromptResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *PromptListChangedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *PromptListChangedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CompleteParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CompleteParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CompleteResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CompleteResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *SetLevelParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *SetLevelParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *LoggingMessageParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *LoggingMessageParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *Root) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *Root) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListRootsParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListRootsParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListRootsResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListRootsResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *RootsListChangedParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *RootsListChangedParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *SamplingMessage) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *SamplingMessage) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CreateMessageParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CreateMessageParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CreateMessageResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CreateMessageResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ElicitParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ElicitParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ElicitResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ElicitResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ElicitationCompleteNotificationParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ElicitationCompleteNotificationParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CreateTaskResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CreateTaskResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetTaskParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetTaskParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetTaskResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetTaskResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetTaskPayloadParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetTaskPayloadParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *GetTaskPayloadResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *GetTaskPayloadResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListTasksParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListTasksParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *ListTasksResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *ListTasksResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CancelTaskParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CancelTaskParams) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *CancelTaskResult) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *CancelTaskResult) SetMeta(m Meta) { x.Meta = m }

// GetMeta returns the _meta field.
func (x *TaskStatusNotificationParams) GetMeta() Meta { return x.Meta }

// SetMeta sets the _meta field.
func (x *TaskStatusNotificationParams) SetMeta(m Meta) { x.Meta = m }
