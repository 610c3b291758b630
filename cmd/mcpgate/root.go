package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/auditcmd"
	"github.com/mcpgate/mcpgate/internal/cli/authcmd"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/cli/policycmd"
	"github.com/mcpgate/mcpgate/internal/cli/taskscmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// globalFlags are the flags every command understands.
type globalFlags struct {
	configFile string
	dataDir    string
}

// newRootCommand builds the mcpgate command tree.
func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "mcpgate",
		Short: "An MCP gateway: one endpoint in front of many MCP servers",
		Long: `mcpgate is a Model Context Protocol gateway. MCP clients (Claude, Cursor,
VS Code, agents) connect to one endpoint, and mcpgate relays everything to
the upstream MCP servers behind it: local programs over stdio and remote
servers over Streamable HTTP or HTTP+SSE.

Start with "mcpgate serve --config FILE", or bring the server list you
already have: "mcpgate serve --servers ~/.cursor/mcp.json".
The configuration file is described in docs/configuration.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", "", "YAML configuration `file`")
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", "", "`directory` for the gateway's state (overrides data_dir; default ~/.local/share/mcpgate)")
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml")
	_ = root.MarkPersistentFlagDirname("data-dir")

	root.AddCommand(newServeCommand(g), newReloadCommand(g), newConfigCommand(g), newVersionCommand())
	root.AddCommand(newConnectCommand(), newClientConfigCommand())

	// The user and client management commands work on the data directory
	// that serve would use; it is resolved before they run, so that a bad
	// --config is reported instead of silently using another directory.
	var dataDir string
	dataCommands := authcmd.Commands(func() string { return dataDir })
	dataCommands = append(dataCommands, auditcmd.Commands(func() string { return dataDir })...)
	dataCommands = append(dataCommands, inventorycmd.Commands(func() string { return dataDir })...)
	dataCommands = append(dataCommands, taskscmd.Commands(func() string { return dataDir })...)
	root.AddCommand(policycmd.Commands(g.policySources)...)
	for _, c := range dataCommands {
		next := c.PersistentPreRunE
		c.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
			url, err := g.commandDatabaseURL(cmd)
			if err != nil {
				return err
			}
			d, a, err := g.resolveData()
			if err != nil {
				return err
			}
			dataDir = d
			ctx := datadir.WithDatabaseURL(cliaudit.WithConfig(cmd.Context(), a), url)
			cmd.SetContext(ctx)
			if next != nil {
				return next(cmd, args)
			}
			return nil
		}
		c.PersistentFlags().String("database-url", "", "PostgreSQL `URL` of the gateway's state (overrides "+datadir.DatabaseURLEnv+" and database_url; default: SQLite in the data directory)")
		root.AddCommand(c)
	}
	return root
}

// resolveData returns the data directory that serve would use (the
// --data-dir flag, else data_dir of the --config file, else the default)
// and the --config file's audit section (nil without one): where the
// checkpoints are signed and published.
func (g *globalFlags) resolveData() (string, *config.Audit, error) {
	var a *config.Audit
	dir := g.dataDir
	if g.configFile != "" {
		c, err := config.Load(g.configFile)
		if err != nil {
			return "", nil, err
		}
		a = c.Audit
		if dir == "" {
			dir = c.DataDir
		}
	}
	if dir != "" {
		return dir, a, nil
	}
	d, err := config.DefaultDataDir()
	return d, a, err
}

// configFlags are the inputs of buildConfig.
type configFlags struct {
	configFile  string
	serversFile string
	// Overrides; each applies only when set is true for it.
	listen, dataDir, auth          string
	setListen, setDataDir, setAuth bool
	// databaseURL overrides database_url and MCPGATE_DATABASE_URL when
	// setDatabaseURL is true.
	databaseURL    string
	setDatabaseURL bool
}

// buildConfig assembles the configuration: the --config file (if any), the
// upstreams of the --servers file appended to it, then the flags that were
// given, then defaults. It validates the result.
func buildConfig(f *configFlags) (*config.Config, error) {
	if f.configFile == "" && f.serversFile == "" {
		return nil, errors.New("no upstreams: give --config FILE (YAML) or --servers FILE (mcpServers/servers JSON), or both")
	}
	cfg := &config.Config{}
	if f.configFile != "" {
		c, err := config.Load(f.configFile)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if f.serversFile != "" {
		ups, err := config.LoadServersJSON(f.serversFile)
		if err != nil {
			return nil, err
		}
		cfg.Upstreams = append(cfg.Upstreams, ups...)
	}
	if f.setListen {
		cfg.Listen = f.listen
	}
	if f.setDataDir {
		cfg.DataDir = f.dataDir
	}
	if f.setAuth {
		cfg.Auth = f.auth
	}
	if env := os.Getenv(datadir.DatabaseURLEnv); env != "" {
		cfg.DatabaseURL = env
	}
	if f.setDatabaseURL {
		cfg.DatabaseURL = f.databaseURL
	}
	if err := cfg.ApplyDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// printConfigError writes err for a person: one problem per line.
func printConfigError(w io.Writer, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintf(w, "configuration has %d problem%s:\n", len(ve.Problems), plural(len(ve.Problems)))
		for _, p := range ve.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "error: %s\n", line)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newConfigCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check configuration files",
		Args:  cobra.NoArgs,
	}
	var serversFile string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration and report every problem",
		Long: `Validate loads the --config file and the --servers file (either or both),
merges them as "serve" would, and reports every problem found: unknown keys
and wrong types (with file, line and column), then missing or conflicting
settings of each upstream. It prints OK and exits 0 when the configuration
is valid, and exits 1 otherwise. It does not contact any upstream.`,
		Example: `  mcpgate config validate --config mcpgate.yaml
  mcpgate config validate --servers ~/Library/Application\ Support/Claude/claude_desktop_config.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := buildConfig(&configFlags{
				configFile: g.configFile, serversFile: serversFile,
				dataDir: g.dataDir, setDataDir: g.dataDir != "",
			})
			if err != nil {
				printConfigError(cmd.ErrOrStderr(), err)
				return &exitError{code: 1}
			}
			names := make([]string, len(cfg.Upstreams))
			for i, u := range cfg.Upstreams {
				names[i] = u.Name
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d upstream%s (%s), listen %s, auth %s\n",
				len(names), plural(len(names)), strings.Join(names, ", "), cfg.Listen, cfg.Auth)
			return nil
		},
	}
	validate.Flags().StringVar(&serversFile, "servers", "", "MCP servers `file` in the mcpServers (Claude, Cursor) or servers (VS Code) JSON format")
	_ = validate.MarkFlagFilename("servers", "json")
	cmd.AddCommand(validate)
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of mcpgate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}

// versionString describes the running binary: the version the gateway
// reports to clients (gateway.Version, the one source of truth), then what
// the build information says of the source (module version when it
// differs, VCS commit and time) and the toolchain.
func versionString() string {
	details := []string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		details = append(details, buildDetails(bi)...)
	}
	details = append(details, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("mcpgate %s (%s)", gateway.Version, strings.Join(details, ", "))
}

// buildDetails describes the source a binary was built from: the module
// version when it is a release other than gateway.Version, and the VCS
// commit ("-dirty" when modified) and its time.
func buildDetails(bi *debug.BuildInfo) []string {
	var details []string
	if v := strings.TrimPrefix(bi.Main.Version, "v"); v != "" && v != "(devel)" && v != gateway.Version {
		details = append(details, "module "+bi.Main.Version)
	}
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "-dirty"
		}
		details = append(details, "commit "+rev)
	}
	if when != "" {
		details = append(details, when)
	}
	return details
}

// Log formats of --log-format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// newLogger returns the logger for level (debug, info, warn or error),
// writing to w in format (text or json). Every log record of the program
// goes through it; the progress lines of serve are output for people,
// not log records.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case logFormatText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case logFormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// commandDatabaseURL returns the PostgreSQL database a data command works
// on, as serve chooses it: the command's --database-url flag, else
// MCPGATE_DATABASE_URL, else database_url of the --config file; "" means
// the SQLite database of the data directory. A URL that is not a
// postgres:// or postgresql:// one is an error (which does not repeat it:
// it may hold a password).
func (g *globalFlags) commandDatabaseURL(cmd *cobra.Command) (string, error) {
	url := os.Getenv(datadir.DatabaseURLEnv)
	if f := cmd.Flags().Lookup("database-url"); f != nil && f.Changed {
		url = f.Value.String()
	} else if url == "" && g.configFile != "" {
		c, err := config.Load(g.configFile)
		if err != nil {
			return "", err
		}
		url = c.DatabaseURL
	}
	if url != "" && !postgres.IsURL(url) {
		return "", errors.New("database URL: want postgres://… or postgresql://…")
	}
	return url, nil
}

// resolveDataDir returns the data directory that serve would use (see
// resolveData).
func (g *globalFlags) resolveDataDir() (string, error) {
	d, _, err := g.resolveData()
	return d, err
}
