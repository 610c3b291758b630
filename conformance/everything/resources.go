package everything

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// The static text resource.
const (
	// StaticTextURI is the URI of the static text resource.
	StaticTextURI = "test://static-text"
	// StaticText is the content of the resource at StaticTextURI.
	StaticText = "This is the content of the static text resource."
)

// Other resource URIs.
const (
	staticBinaryURI = "test://static-binary"
	watchedURI      = "test://watched-resource"
	templateURI     = "test://template/{id}/data"

	templatePrefix = "test://template/"
	templateSuffix = "/data"
)

func (f *Server) addResources() {
	s := f.server
	s.AddResource(&mcp.Resource{
		URI:         StaticTextURI,
		Name:        "static-text",
		Title:       "Static Text Resource",
		Description: "A static text resource for testing",
		MIMEType:    "text/plain",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return contents(&mcp.ResourceContents{URI: StaticTextURI, MIMEType: "text/plain", Text: StaticText}), nil
	})
	s.AddResource(&mcp.Resource{
		URI:         staticBinaryURI,
		Name:        "static-binary",
		Title:       "Static Binary Resource",
		Description: "A static binary resource (a PNG image) for testing",
		MIMEType:    "image/png",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return contents(&mcp.ResourceContents{URI: staticBinaryURI, MIMEType: "image/png", Blob: f.png}), nil
	})
	s.AddResource(&mcp.Resource{
		URI:         watchedURI,
		Name:        "watched-resource",
		Title:       "Watched Resource",
		Description: "A resource that changes every few seconds; subscribe to be told",
		MIMEType:    "text/plain",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		text := fmt.Sprintf("Watched resource content, version %d", f.watchedVersion.Load())
		return contents(&mcp.ResourceContents{URI: watchedURI, MIMEType: "text/plain", Text: text}), nil
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: templateURI,
		Name:        "template",
		Title:       "Resource Template",
		Description: "A resource template with an id parameter",
		MIMEType:    "application/json",
	}, f.readTemplate)
}

func contents(c *mcp.ResourceContents) *mcp.ReadResourceResult {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{c}}
}

// templateData is the body of test://template/{id}/data.
type templateData struct {
	ID           string `json:"id"`
	TemplateTest bool   `json:"templateTest"`
	Data         string `json:"data"`
}

func (f *Server) readTemplate(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	id := req.Vars["id"]
	if id == "" {
		return nil, fmt.Errorf("%w: %s has no id", mcp.ErrResourceNotFound, req.Params.URI)
	}
	body, err := json.Marshal(templateData{ID: id, TemplateTest: true, Data: "Data for ID: " + id})
	if err != nil {
		return nil, err
	}
	return contents(&mcp.ResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(body)}), nil
}

// knownURI reports whether uri names one of the fixture's resources (static
// or from the template).
func knownURI(uri string) bool {
	switch uri {
	case StaticTextURI, staticBinaryURI, watchedURI:
		return true
	}
	id, ok := strings.CutPrefix(uri, templatePrefix)
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, templateSuffix)
	return ok && id != "" && !strings.Contains(id, "/")
}

// subscribe accepts subscriptions to the fixture's resources; the server
// records them and run sends updates of test://watched-resource.
func (f *Server) subscribe(_ context.Context, ss *mcp.ServerSession, p *mcp.SubscribeParams) error {
	if !knownURI(p.URI) {
		return resourceNotFound(p.URI)
	}
	f.logger.Debug("subscribed", "session", ss.ID(), "uri", p.URI)
	return nil
}

func (f *Server) unsubscribe(_ context.Context, ss *mcp.ServerSession, p *mcp.UnsubscribeParams) error {
	f.logger.Debug("unsubscribed", "session", ss.ID(), "uri", p.URI)
	return nil
}

func resourceNotFound(uri string) *jsonrpc.Error {
	data, err := json.Marshal(struct {
		URI string `json:"uri"`
	}{uri})
	if err != nil {
		data = nil
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeResourceNotFound, Message: "resource not found: " + uri, Data: data}
}
