// Package everything builds the MCP server that the official conformance
// suite (github.com/modelcontextprotocol/conformance) drives: every tool,
// resource, prompt and behaviour the suite's server scenarios look for, built
// on the mcp package.
//
// The command conformance/everything-server serves it over Streamable HTTP or
// stdio; tests can build it directly:
//
//	s := everything.NewServer(nil)
//	go s.Run(ctx)                         // the timed fixtures
//	h := s.NewStreamableHTTPHandler()     // serve at /mcp
package everything
