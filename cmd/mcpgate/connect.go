package main

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/net/http/httpguts"

	"github.com/mcpgate/mcpgate/internal/connect"
)

// newConnectCommand builds "mcpgate connect URL": a stdio MCP server
// that relays to a remote gateway, for hosts that only start commands.
func newConnectCommand() *cobra.Command {
	var (
		headers []string
		o       connect.Options
	)
	cmd := &cobra.Command{
		Use:   "connect URL",
		Short: "Serve MCP on stdio, relayed to a remote gateway (for stdio-only hosts)",
		Long: `connect runs as an MCP server on standard input and output and relays every
message to the Streamable HTTP endpoint URL (for example
https://gw.example.com/mcp), so that hosts that can only start a command,
such as Claude Desktop, can use a remote gateway.

When the gateway asks for OAuth, connect signs you in in your browser (the
sign-in address is always printed on standard error; --no-browser only
prints it). $BROWSER, when set, names the browser command as xdg-open
reads it (commands separated by ':', the first that exists is run, with
the address in place of %s or as its last argument); otherwise the
system's opener is used (xdg-open, open). connect keeps the tokens in a file only you can read, by default
<user config dir>/mcpgate/tokens/<host>.json; they are refreshed when they
expire. With --header "Authorization: Bearer ..." no sign-in happens.
Standard output carries only MCP messages; logs go to standard error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			o.URL, o.Header = args[0], h
			o.Stderr = cmd.ErrOrStderr()
			o.Stdin, o.Stdout = stdinOf(cmd), stdoutOf(cmd)
			return connect.Run(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&headers, "header", "H", nil, `header sent with every request, "Name: value" (repeatable); an Authorization header turns OAuth sign-in off`)
	f.StringVar(&o.TokenFile, "token-file", "", "`file` for the OAuth tokens (default <user config dir>/mcpgate/tokens/<host>.json)")
	f.BoolVar(&o.NoBrowser, "no-browser", false, "print the sign-in address without opening a browser")
	f.DurationVar(&o.SignInTimeout, "sign-in-timeout", connect.DefaultSignInTimeout, "how long to wait for the browser sign-in; the request that needed it then fails")
	f.StringVar(&o.ClientMetadataURL, "client-metadata-url", "", "https `URL` of a Client ID Metadata Document to use as the OAuth client id (default: dynamic registration)")
	return cmd
}

// parseHeaders parses --header values.
func parseHeaders(values []string) (http.Header, error) {
	h := http.Header{}
	for _, v := range values {
		name, value, ok := strings.Cut(v, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf(`--header %q: want "Name: value"`, v)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), value)
	}
	return h, nil
}

// stdinOf returns the command's input as a ReadCloser (os.Stdin unless
// a test set another).
func stdinOf(cmd *cobra.Command) io.ReadCloser {
	if r, ok := cmd.InOrStdin().(io.ReadCloser); ok {
		return r
	}
	return io.NopCloser(cmd.InOrStdin())
}

// stdoutOf returns the command's output as a WriteCloser.
func stdoutOf(cmd *cobra.Command) io.WriteCloser {
	w := cmd.OutOrStdout()
	if wc, ok := w.(io.WriteCloser); ok && w != os.Stdout {
		return wc
	}
	return nopWriteCloser{w}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
