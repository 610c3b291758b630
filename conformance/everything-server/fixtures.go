package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
)

const (
	// dynamicToolDelay is how long after start-up test_dynamic_tool appears.
	dynamicToolDelay = 2 * time.Second
	// watchedUpdateInterval is how often test://watched-resource changes.
	watchedUpdateInterval = 3 * time.Second
)

// fixtures is the everything-server: an mcp.Server with every conformance
// fixture, and the state some fixtures change over time.
type fixtures struct {
	server *mcp.Server
	logger *slog.Logger
	png    []byte
	wav    []byte
	// dynamicDelay and watchInterval pace run (dynamicToolDelay and
	// watchedUpdateInterval, shorter in tests).
	dynamicDelay  time.Duration
	watchInterval time.Duration
	// watchedVersion counts the updates of test://watched-resource.
	watchedVersion atomic.Int64
}

// newFixtures builds the server with all tools, resources and prompts.
func newFixtures(logger *slog.Logger) *fixtures {
	f := &fixtures{
		logger:        logger,
		png:           testPNG(),
		wav:           testWAV(),
		dynamicDelay:  dynamicToolDelay,
		watchInterval: watchedUpdateInterval,
	}
	f.server = mcp.NewServer(&mcp.Implementation{
		Name:    "mcpgate-everything-server",
		Title:   "mcpgate conformance fixture server",
		Version: "1.0.0",
	}, &mcp.ServerOptions{
		Logger: logger,
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
	f.addResources()
	f.addPrompts()
	return f
}

// run adds test_dynamic_tool after f.dynamicDelay and updates the watched
// resource every f.watchInterval, telling subscribed sessions, until ctx is
// done.
func (f *fixtures) run(ctx context.Context) {
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
