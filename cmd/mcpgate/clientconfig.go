package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway/config"
)

// clientHosts are the hosts client-config knows, with where their
// snippet goes.
var clientHosts = map[string]string{
	"claude":      "Add this entry to \"mcpServers\" in claude_desktop_config.json (Claude Desktop: Settings > Developer > Edit Config), then restart Claude Desktop. Claude Desktop starts \"mcpgate connect\", which signs you in in your browser.",
	"claude-code": "Run this command line in a terminal.",
	"cursor":      "Add this entry to \"mcpServers\" in ~/.cursor/mcp.json (every project) or .cursor/mcp.json (one project).",
	"vscode":      "Add this entry to \"servers\" in .vscode/mcp.json (one workspace) or in your user mcp.json (command \"MCP: Open User Configuration\").",
}

// newClientConfigCommand builds "mcpgate client-config HOST".
func newClientConfigCommand() *cobra.Command {
	var name, endpoint, command string
	cmd := &cobra.Command{
		Use:       "client-config claude|claude-code|cursor|vscode",
		Short:     "Print the snippet that connects an MCP host to the gateway",
		ValidArgs: []string{"claude", "claude-code", "cursor", "vscode"},
		Long: `client-config prints what to paste into an MCP host so that it uses the
gateway at --url (default http://` + config.DefaultListen + `/mcp):

  claude       Claude Desktop: a claude_desktop_config.json "mcpServers" entry
               that runs "mcpgate connect URL" (stdio, with browser sign-in)
  claude-code  Claude Code: the "claude mcp add --transport http" command line
  cursor       Cursor: a ~/.cursor/mcp.json "mcpServers" entry with the url
  vscode       VS Code: a .vscode/mcp.json "servers" entry of type http

The snippet goes to standard output, where to paste it to standard error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if command == "" {
				command = "mcpgate"
				if exe, err := os.Executable(); err == nil {
					command = exe
				}
			}
			out, err := clientSnippet(args[0], name, endpoint, command)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), clientHosts[args[0]])
			_, err = fmt.Fprintln(cmd.OutOrStdout(), out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "url", "http://"+config.DefaultListen+"/mcp", "the gateway's MCP endpoint `URL`")
	f.StringVar(&name, "name", "mcpgate", "the `name` of the server in the host")
	f.StringVar(&command, "command", "", "the mcpgate `program` Claude Desktop runs (default: this program's path)")
	return cmd
}

// clientSnippet returns the snippet of host for the gateway at endpoint,
// named name; command is the mcpgate program for hosts that start it.
func clientSnippet(host, name, endpoint, command string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("--url %q must be an absolute http(s) URL", endpoint)
	}
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == '"' || r == '\'' || r == '\\' }) {
		return "", errors.New("--name must be a non-empty name without spaces, quotes or backslashes")
	}
	var entry map[string]any
	wrapper := "mcpServers"
	switch host {
	case "claude":
		entry = map[string]any{"command": command, "args": []string{"connect", endpoint}}
	case "claude-code":
		return "claude mcp add --transport http " + name + " " + shellQuote(endpoint), nil
	case "cursor":
		entry = map[string]any{"url": endpoint}
	case "vscode":
		entry, wrapper = map[string]any{"type": "http", "url": endpoint}, "servers"
	default:
		return "", fmt.Errorf("unknown host %q: want claude, claude-code, cursor or vscode", host)
	}
	b, err := json.Marshal(map[string]any{wrapper: map[string]any{name: entry}}, json.Deterministic(true))
	if err != nil {
		return "", err
	}
	v := jsontext.Value(b)
	if err := v.Indent(jsontext.WithIndent("  ")); err != nil {
		return "", err
	}
	return string(v), nil
}

// shellQuote quotes s for a POSIX shell when it has characters the shell
// would interpret.
func shellQuote(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":/.-_~%+=@,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
