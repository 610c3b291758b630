package everything

import (
	"context"
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/mcp"
)

func (f *Server) addPrompts() {
	s := f.server
	s.AddPrompt(&mcp.Prompt{
		Name:        "test_simple_prompt",
		Title:       "Simple Test Prompt",
		Description: "A simple prompt without arguments",
	}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return messages(userText("This is a simple prompt for testing.")), nil
	})
	s.AddPrompt(&mcp.Prompt{
		Name:        "test_prompt_with_arguments",
		Title:       "Prompt With Arguments",
		Description: "A prompt with two required arguments",
		Arguments: []*mcp.PromptArgument{
			{Name: "arg1", Description: "First test argument", Required: true},
			{Name: "arg2", Description: "Second test argument", Required: true},
		},
	}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		a := req.Params.Arguments
		return messages(userText(fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", a["arg1"], a["arg2"]))), nil
	})
	s.AddPrompt(&mcp.Prompt{
		Name:        "test_prompt_with_embedded_resource",
		Title:       "Prompt With Embedded Resource",
		Description: "A prompt that embeds the resource it is given",
		Arguments: []*mcp.PromptArgument{
			{Name: "resourceUri", Description: "URI of the resource to embed", Required: true},
		},
	}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return messages(
			&mcp.PromptMessage{Role: mcp.RoleUser, Content: &mcp.EmbeddedResource{Resource: &mcp.ResourceContents{
				URI:      req.Params.Arguments["resourceUri"],
				MIMEType: "text/plain",
				Text:     "Embedded resource content for testing.",
			}}},
			userText("Please process the embedded resource above."),
		), nil
	})
	s.AddPrompt(&mcp.Prompt{
		Name:        "test_prompt_with_image",
		Title:       "Prompt With Image",
		Description: "A prompt that includes an image",
	}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return messages(
			&mcp.PromptMessage{Role: mcp.RoleUser, Content: &mcp.ImageContent{Data: f.png, MIMEType: "image/png"}},
			userText("Please analyze the image above."),
		), nil
	})
}

func userText(text string) *mcp.PromptMessage {
	return &mcp.PromptMessage{Role: mcp.RoleUser, Content: &mcp.TextContent{Text: text}}
}

func messages(m ...*mcp.PromptMessage) *mcp.GetPromptResult {
	return &mcp.GetPromptResult{Messages: m}
}

// completionCandidates returns the values offered for an argument of a
// prompt or resource template (name is the prompt name or the URI template).
func completionCandidates(refType, name, arg string) []string {
	switch {
	case refType == mcp.RefTypePrompt && name == "test_prompt_with_arguments" && arg == "arg1":
		return []string{"test", "testValue1", "example1"}
	case refType == mcp.RefTypePrompt && name == "test_prompt_with_arguments" && arg == "arg2":
		return []string{"test", "testValue2", "example2"}
	case refType == mcp.RefTypePrompt && name == "test_prompt_with_embedded_resource" && arg == "resourceUri":
		return []string{StaticTextURI, staticBinaryURI, watchedURI}
	case refType == mcp.RefTypeResource && name == templateURI && arg == "id":
		return []string{"1", "2", "3", "123"}
	}
	return nil
}

// complete answers completion/complete with the candidates that start with
// the typed value. Unknown references complete to nothing.
func (f *Server) complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := req.Params
	if p.Ref == nil {
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	name := p.Ref.Name
	if p.Ref.Type == mcp.RefTypeResource {
		name = p.Ref.URI
	}
	values := []string{}
	for _, c := range completionCandidates(p.Ref.Type, name, p.Argument.Name) {
		if strings.HasPrefix(c, p.Argument.Value) {
			values = append(values, c)
		}
	}
	total := len(values)
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: values, Total: &total}}, nil
}
