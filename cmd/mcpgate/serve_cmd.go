package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/internal/telemetry"
)

func newServeCommand(g *globalFlags) *cobra.Command {
	var (
		serversFile, listen, auth string
		logLevel, logFormat       string
		databaseURL               string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Serve starts the gateway: it connects to every upstream MCP server, reports
how each one comes up, and serves the merged catalogue to MCP clients at
/mcp on the listen address.

Upstreams come from the --config file (YAML, see docs/configuration.md), the
--servers file (the mcpServers JSON of Claude Desktop, Claude Code and Cursor,
or the servers JSON of VS Code), or both: the upstreams of --servers are
added after those of --config. Flags override the values of the file.

With --auth oauth the built-in authorization server protects /mcp. An
upstream that fails to start does not stop the others. SIGINT (Ctrl-C) or
SIGTERM shut the gateway down cleanly; SIGHUP (or mcpgate reload) makes it
re-read its configuration.`,
		Example: `  # the quickstart, from the repository root
  mcpgate serve --config examples/quickstart.yaml

  # the servers you already use in Cursor, behind one endpoint
  mcpgate serve --servers ~/.cursor/mcp.json --listen 127.0.0.1:9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && f == os.Stderr {
				// The program's own stderr: other libraries' log output
				// (the log package, OpenTelemetry) goes through the same
				// handler. Tests that pass a buffer keep global state.
				telemetry.RouteLogs(logger)
			}
			flags := cmd.Flags()
			cf := &configFlags{
				configFile: g.configFile, serversFile: serversFile,
				listen: listen, setListen: flags.Changed("listen"),
				dataDir: g.dataDir, setDataDir: g.dataDir != "",
				auth: auth, setAuth: flags.Changed("auth"),
				databaseURL: databaseURL, setDatabaseURL: flags.Changed("database-url"),
			}
			cfg, err := buildConfig(cf)
			if err != nil {
				printConfigError(cmd.ErrOrStderr(), err)
				return &exitError{code: 1}
			}
			// A reload reads the same files with the same flags.
			reread := func() (*config.Config, error) { return buildConfig(cf) }
			return runGateway(cmd.Context(), cfg, logger, cmd.ErrOrStderr(), reread)
		},
	}
	f := cmd.Flags()
	f.StringVar(&serversFile, "servers", "", "MCP servers `file` in the mcpServers (Claude, Cursor) or servers (VS Code) JSON format")
	f.StringVar(&listen, "listen", "", "`address` to serve on, host:port (overrides listen; default "+config.DefaultListen+")")
	f.StringVar(&auth, "auth", "", "how callers authenticate: none or oauth (overrides auth; default none)")
	f.StringVar(&databaseURL, "database-url", "", "PostgreSQL `URL` to keep the state in, shared by replicas (overrides "+datadir.DatabaseURLEnv+" and database_url; default: SQLite in the data directory)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", logFormatText, "log format: text or json (progress lines stay text)")
	_ = cmd.MarkFlagFilename("servers", "json")
	_ = cmd.RegisterFlagCompletionFunc("auth", cobra.FixedCompletions([]string{config.AuthNone, config.AuthOAuth}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{logFormatText, logFormatJSON}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// endpointURL returns the URL clients use to reach the gateway listening on
// addr.
func endpointURL(cfg *config.Config, addr net.Addr) string {
	if cfg.PublicURL != "" {
		return strings.TrimSuffix(cfg.PublicURL, "/") + "/mcp"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return fmt.Sprintf("http://%s/mcp", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return fmt.Sprintf("http://%s/mcp", net.JoinHostPort(host, port))
}
