package everything

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
)

const (
	// dynamicToolDelay is how long after Run starts test_dynamic_tool appears.
	dynamicToolDelay = 2 * time.Second
	// watchedUpdateInterval is how often test://watched-resource changes.
	watchedUpdateInterval = 3 * time.Second
	// sessionTimeout ends Streamable HTTP sessions idle for this long.
	sessionTimeout = 10 * time.Minute
)

// Options configures a Server. The zero value (or nil) is the configuration
// the conformance suite expects.
type Options struct {
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
	// DynamicToolDelay is how long after Run starts test_dynamic_tool
	// appears. Zero means 2s.
	DynamicToolDelay time.Duration
	// WatchedUpdateInterval is how often Run changes
	// test://watched-resource and tells subscribed sessions. Zero means 3s.
	WatchedUpdateInterval time.Duration
}

// Server is the everything server: an mcp.Server with every conformance
// fixture, and the state some fixtures change over time.
type Server struct {
	server *mcp.Server
	logger *slog.Logger
	png    []byte
	wav    []byte
	// dynamicDelay and watchInterval pace Run.
	dynamicDelay  time.Duration
	watchInterval time.Duration
	// watchedVersion counts the updates of test://watched-resource.
	watchedVersion atomic.Int64
	// changes names the tools and prompts the trigger tools add.
	changes atomic.Int64
}

// NewServer builds the server with all tools, resources and prompts. Call
// Run to start the fixtures that change over time.
func NewServer(opts *Options) *Server {
	if opts == nil {
		opts = &Options{}
	}
	f := &Server{
		logger:        opts.Logger,
		png:           testPNG(),
		wav:           testWAV(),
		dynamicDelay:  opts.DynamicToolDelay,
		watchInterval: opts.WatchedUpdateInterval,
	}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	if f.dynamicDelay <= 0 {
		f.dynamicDelay = dynamicToolDelay
	}
	if f.watchInterval <= 0 {
		f.watchInterval = watchedUpdateInterval
	}
	f.server = mcp.NewServer(&mcp.Implementation{
		Name:    "mcpgate-everything-server",
		Title:   "mcpgate conformance fixture server",
		Version: "1.0.0",
	}, &mcp.ServerOptions{
		Logger: f.logger,
		Capabilities: &mcp.ServerCapabilities{
			Tools:     &mcp.ToolCapabilities{ListChanged: true},
			Resources: &mcp.ResourceCapabilities{Subscribe: true, ListChanged: true},
			Prompts:   &mcp.PromptCapabilities{ListChanged: true},
			Logging:   &mcp.LoggingCapabilities{},
		},
		CompletionHandler:  f.complete,
		SubscribeHandler:   f.subscribe,
		UnsubscribeHandler: f.unsubscribe,
	})
	f.addTools()
	f.addModernTools()
	f.addTaskTools()
	f.addResources()
	f.addPrompts()
	return f
}

// MCPServer returns the underlying mcp.Server, to serve over any transport.
func (f *Server) MCPServer() *mcp.Server { return f.server }

// NewStreamableHTTPHandler returns a Streamable HTTP handler for the server
// with the options the suite needs: an in-memory event store, so that
// streams closed mid-call (test_reconnection) can be resumed, and a session
// timeout, because some scenarios never delete their sessions. Close the
// handler to end its sessions.
func (f *Server) NewStreamableHTTPHandler() *mcp.StreamableHTTPHandler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.server }, &mcp.StreamableHTTPOptions{
		EventStore:     mcp.NewMemoryEventStore(nil),
		SessionTimeout: sessionTimeout,
		Logger:         f.logger,
	})
}

// Run adds test_dynamic_tool after Options.DynamicToolDelay and updates the
// watched resource every Options.WatchedUpdateInterval, telling subscribed
// sessions, until ctx is done.
func (f *Server) Run(ctx context.Context) {
	dynamic := time.NewTimer(f.dynamicDelay)
	defer dynamic.Stop()
	tick := time.NewTicker(f.watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-dynamic.C:
			f.addDynamicTool()
		case <-tick.C:
			f.watchedVersion.Add(1)
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := f.server.ResourceUpdated(uctx, &mcp.ResourceUpdatedNotificationParams{URI: watchedURI})
			cancel()
			if err != nil {
				f.logger.Debug("resource update notification failed", "uri", watchedURI, "error", err)
			}
		}
	}
}
