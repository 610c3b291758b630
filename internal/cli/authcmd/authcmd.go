// Package authcmd provides the `mcpgate user` and `mcpgate client`
// commands that manage the built-in authorization server's local users
// and pre-registered OAuth clients in the SQLite store.
package authcmd

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// Commands returns the `user` and `client` command trees. dataDir is
// called when a command runs and names the directory holding the store.
func Commands(dataDir func() string) []*cobra.Command {
	return []*cobra.Command{userCommand(dataDir), clientCommand(dataDir)}
}

func openStore(ctx context.Context, dataDir func() string) (datadir.DB, error) {
	return datadir.OpenCommand(ctx, dataDir(), true)
}

func withStore(dataDir func() string, fn func(cmd *cobra.Command, args []string, st store.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := openStore(cmd.Context(), dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(cmd, args, st)
	}
}

// withAudit is withStore for commands that change the store: the audit
// log is opened before fn runs (an act that cannot be recorded is not
// carried out), and fn records the act with rec.
func withAudit(dataDir func() string, fn func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		st, err := openStore(cmd.Context(), dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		rec, err := cliaudit.Open(cmd.Context(), st, dataDir())
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, rec.Close()) }()
		return fn(cmd, args, st, rec)
	}
}

// userAttributes checks the attributes given to `user add`.
func userAttributes(groups, roles []string, email string) (principal.Attributes, error) {
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" {
			return principal.Attributes{}, fmt.Errorf("--email %q is not a plain email address", email)
		}
	}
	for _, l := range [][]string{groups, roles} {
		for _, v := range l {
			if strings.TrimSpace(v) != v || v == "" {
				return principal.Attributes{}, fmt.Errorf("group or role %q is empty or has surrounding spaces", v)
			}
		}
	}
	return principal.Attributes{Groups: groups, Roles: roles, Email: email}.Normalize()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func userCommand(dataDir func() string) *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manage local users of the built-in authorization server"}

	var fromStdin, generate bool
	var groups, roles []string
	var email string
	add := &cobra.Command{
		Use:   "add USERNAME",
		Short: "Add a user (password from stdin, or generated and printed once)",
		Long: `Adds a local user of the built-in authorization server. --group, --role
(both repeatable) and --email set attributes that travel in the user's
access tokens and that policies read as principal.groups, principal.roles
and principal.email (at most 64 groups and 64 roles, each value at most
256 bytes).`,
		Args: cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			name := args[0]
			if err := validUsername(name); err != nil {
				return err
			}
			attrs, err := userAttributes(groups, roles, email)
			if err != nil {
				return err
			}
			var password string
			switch {
			case fromStdin && generate:
				return errors.New("use either --password-stdin or --generate-password")
			case fromStdin:
				line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("reading password: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
				if len(password) < 8 {
					return errors.New("password must be at least 8 characters")
				}
			case generate:
				password = meta.RandomToken(18)
			default:
				return errors.New("pass --password-stdin (and the password on standard input) or --generate-password")
			}
			hash, err := authserver.HashPassword(password, nil)
			if err != nil {
				return err
			}
			u := &store.User{Username: name, PasswordHash: hash, Groups: attrs.Groups, Roles: attrs.Roles, Email: attrs.Email, CreatedAt: time.Now()}
			if err := st.CreateUser(cmd.Context(), u); err != nil {
				if errors.Is(err, store.ErrExists) {
					return fmt.Errorf("user %q already exists", name)
				}
				return err
			}
			how := "password from standard input"
			if generate {
				how = "generated password"
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionUserAdded, Target: name, Error: "local user added (" + how + ")"}); err != nil {
				return err
			}
			if generate {
				fmt.Fprintf(cmd.OutOrStdout(), "added user %s\npassword: %s\n(shown once; it is stored only as an argon2id hash)\n", name, password)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "added user %s\n", name)
			}
			return nil
		}),
	}
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	add.Flags().BoolVar(&generate, "generate-password", false, "generate a random password and print it once")
	add.Flags().StringArrayVar(&groups, "group", nil, "a group the user belongs to (repeatable): principal.groups in policies")
	add.Flags().StringArrayVar(&roles, "role", nil, "a role the user has (repeatable): principal.roles in policies")
	add.Flags().StringVar(&email, "email", "", "the user's email address: principal.email in policies")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: withStore(dataDir, func(cmd *cobra.Command, _ []string, st store.Store) error {
			users, err := st.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tCREATED\tGROUPS\tROLES\tEMAIL")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.CreatedAt.UTC().Format(time.RFC3339),
					dash(strings.Join(u.Groups, ",")), dash(strings.Join(u.Roles, ",")), dash(u.Email))
			}
			return tw.Flush()
		}),
	}

	remove := &cobra.Command{
		Use:   "remove USERNAME",
		Short: "Revoke and remove a user",
		Long: `Revokes the user first, as "mcpgate revoke user" does (the revocation is
recorded, the user's tokens are revoked, and a gateway ends the user's
sessions, tasks and upstream access), then removes the account. The
revocation stays recorded: "mcpgate reinstate user" lifts it.`,
		Args: cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			if _, err := st.GetUser(cmd.Context(), args[0]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %q", args[0])
			}
			if err := revokeFirst(cmd, st, rec, store.RevokeUser, args[0], "user removed"); err != nil {
				return err
			}
			if err := st.DeleteUser(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no user %q", args[0])
				}
				return err
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionUserRemoved, Target: args[0], Error: "local user removed"}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed user %s\n", args[0])
			return nil
		}),
	}
	user.AddCommand(add, list, remove)
	return user
}

// revokeFirst revokes what `remove` removes, on the same code path as
// `mcpgate revoke`, before it is removed.
func revokeFirst(cmd *cobra.Command, st store.Store, rec *cliaudit.Recorder, kind, id, reason string) error {
	db, ok := st.(datadir.DB)
	if !ok {
		return fmt.Errorf("revoking %s %s: the store %T keeps no revocations", kind, id, st)
	}
	if err := inventorycmd.Revoke(cmd.Context(), db, rec, cmd.OutOrStdout(), kind, id, inventorycmd.DefaultBy(), reason); err != nil {
		return fmt.Errorf("%w; not removed (run the command again)", err)
	}
	return nil
}

func validUsername(n string) error {
	if n == "" || len(n) > 128 {
		return errors.New("username must be 1 to 128 characters")
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f || r == ':' {
			return fmt.Errorf("username %q contains an invalid character", n)
		}
	}
	return nil
}

func clientCommand(dataDir func() string) *cobra.Command {
	client := &cobra.Command{Use: "client", Short: "Manage OAuth clients of the built-in authorization server: pre-register, list, approve, refuse, remove"}

	var (
		name, method, scope, jwksFile, jwksURI string
		redirects, grants                      []string
	)
	add := &cobra.Command{
		Use:   "add CLIENT_ID",
		Short: "Pre-register a client (a generated secret is printed once)",
		Args:  cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			id := args[0]
			if id == "" || len(id) > 255 || strings.HasPrefix(id, "https://") || strings.ContainsAny(id, " \t\r\n") {
				return errors.New("client id must be 1 to 255 characters without spaces and must not be an https URL (those are metadata-document clients)")
			}
			c := &store.Client{ID: id, Kind: store.ClientPreRegistered, Name: name, RedirectURIs: redirects, GrantTypes: grants,
				TokenEndpointAuthMethod: method, Scope: scope, JWKSURI: jwksURI, CreatedAt: time.Now()}
			if err := checkClient(c); err != nil {
				return err
			}
			if jwksFile != "" {
				raw, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("reading --jwks-file: %w", err)
				}
				var set jose.JSONWebKeySet
				if err := json.Unmarshal(raw, &set); err != nil {
					return fmt.Errorf("--jwks-file is not a JWK set: %w", err)
				}
				for _, k := range set.Keys {
					if !k.IsPublic() {
						return errors.New("--jwks-file must hold public keys only")
					}
				}
				c.JWKS = string(raw)
			}
			if method == meta.AuthMethodPrivateKeyJWT && c.JWKS == "" && c.JWKSURI == "" {
				return errors.New("private_key_jwt needs --jwks-file or --jwks-uri")
			}
			var secret string
			if method == meta.AuthMethodClientSecretBasic || method == meta.AuthMethodClientSecretPost {
				secret = meta.RandomToken(32)
				c.SecretHash = store.Digest(secret)
			}
			if err := st.CreateClient(cmd.Context(), c); err != nil {
				if errors.Is(err, store.ErrExists) {
					return fmt.Errorf("client %q already exists", id)
				}
				return err
			}
			detail := fmt.Sprintf("pre-registered client added: auth method %s, grants %s, redirect URIs %s, scope %q",
				method, strings.Join(grants, " "), cmp.Or(strings.Join(redirects, " "), "(none)"), scope)
			if c.JWKS != "" || c.JWKSURI != "" {
				detail += fmt.Sprintf(", keys %s", cmp.Or(c.JWKSURI, "from --jwks-file"))
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionClientAdded, Target: id, Error: detail}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "added client %s (%s)\n", id, method)
			if secret != "" {
				fmt.Fprintf(out, "client_secret: %s\n(shown once; it is stored only as a SHA-256 digest)\n", secret)
			}
			return nil
		}),
	}
	f := add.Flags()
	f.StringVar(&name, "name", "", "client name shown on the consent page")
	f.StringArrayVar(&redirects, "redirect-uri", nil, "redirect URI (repeatable; exact match, any port for http://127.0.0.1 and http://[::1])")
	f.StringArrayVar(&grants, "grant", []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}, "grant type (repeatable)")
	f.StringVar(&method, "auth-method", meta.AuthMethodClientSecretBasic, "token endpoint auth method: client_secret_basic, client_secret_post, private_key_jwt or none")
	f.StringVar(&scope, "scope", "", "space-separated scopes the client may obtain (default: any scope of the resource)")
	f.StringVar(&jwksFile, "jwks-file", "", "file with the client's public JWK set (private_key_jwt)")
	f.StringVar(&jwksURI, "jwks-uri", "", "URL of the client's public JWK set (private_key_jwt)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List clients (pre-registered, dynamically registered and metadata-document clients seen)",
		Args:  cobra.NoArgs,
		RunE: withStore(dataDir, func(cmd *cobra.Command, _ []string, st store.Store) error {
			cs, err := st.ListClients(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tKIND\tSTATUS\tAUTH\tGRANTS\tNAME\tFIRST_USED\tREDIRECT_URIS")
			for _, c := range cs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, statusText(c), c.TokenEndpointAuthMethod, dash(strings.Join(c.GrantTypes, ",")),
					dash(c.Name), timeText(c.FirstUsedAt), dash(strings.Join(c.RedirectURIs, " ")))
			}
			return tw.Flush()
		}),
	}

	remove := &cobra.Command{
		Use:   "remove CLIENT_ID",
		Short: "Revoke and remove a client",
		Long: `Revokes the client first, as "mcpgate revoke client" does (the revocation is
recorded, the client's tokens are revoked, and a gateway ends its sessions,
tasks and upstream access), then removes the client. The revocation stays
recorded: "mcpgate reinstate client" lifts it.`,
		Args: cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			if _, err := st.GetClient(cmd.Context(), args[0]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no client %q", args[0])
			}
			if err := revokeFirst(cmd, st, rec, store.RevokeClient, args[0], "client removed"); err != nil {
				return err
			}
			if err := st.DeleteClient(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				}
				return err
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionClientRemoved, Target: args[0], Error: "client removed"}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed client %s\n", args[0])
			return nil
		}),
	}
	var by, reason string
	approve := &cobra.Command{
		Use:   "approve CLIENT_ID",
		Short: "Approve a client: it may obtain tokens on a path that needs approval (and its current metadata becomes the inventory's baseline)",
		Long: `Approves a client. A client registered on a path whose admission mode is
"approval" (oauth.clients.<path>.mode) is stored as pending and obtains no
token until it is approved; an approved client is also admitted on a path
that is closed or whose allow list does not name it. The grant types it may
obtain are still those of its path (oauth.clients.<path>.grant_types). Its
current redirect URIs and keys become the inventory's approved baseline (as
"inventory approve-client" does). A running gateway sees the decision at the
client's next request.`,
		Args: cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			return decideClient(cmd, st, rec, args[0], store.ClientApproved, by, reason)
		}),
	}
	refuse := &cobra.Command{
		Use:   "refuse CLIENT_ID",
		Short: "Refuse a client: it obtains no token on any path, and its live tokens are revoked",
		Args:  cobra.ExactArgs(1),
		RunE: withAudit(dataDir, func(cmd *cobra.Command, args []string, st store.Store, rec *cliaudit.Recorder) error {
			return decideClient(cmd, st, rec, args[0], store.ClientRefused, by, reason)
		}),
	}
	for _, c := range []*cobra.Command{approve, refuse} {
		c.Flags().StringVar(&by, "by", "cli:"+cliaudit.Actor(), "who decides (recorded)")
		c.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	}
	client.AddCommand(add, list, remove, approve, refuse)
	return client
}

// statusText is the admission status column of `client list`.
func statusText(c *store.Client) string {
	switch c.Status {
	case store.ClientPending:
		return "PENDING (client approve " + c.ID + ")"
	case store.ClientRefused:
		return "REFUSED"
	case store.ClientApproved:
		return "approved"
	}
	return "-"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// decideClient records an administrator's admission decision on a client
// and audits it (inventory.DecideClient: approving also approves the
// client's current metadata in the inventory; refusing revokes the
// client's live tokens).
func decideClient(cmd *cobra.Command, st store.Store, rec *cliaudit.Recorder, id, status, by, reason string) error {
	ctx := cmd.Context()
	var inv *inventory.Inventory
	if ist, ok := st.(store.InventoryStore); ok {
		var err error
		if inv, err = inventory.New(st, ist, nil); err != nil {
			return err
		}
	}
	d, err := inventory.DecideClient(ctx, st, inv, id, status, by, reason, nil)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no client %q (metadata-document clients appear once the gateway has fetched their document)", id)
	}
	if err != nil {
		return err
	}
	if err := rec.Record(ctx, cliaudit.ClientDecisionRecord(id, status, d.Detail, by, d.Err != nil)); err != nil {
		return errors.Join(d.Err, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s client %s (%s)\n", status, id, d.Client.Kind)
	return d.Err
}

// checkClient validates a pre-registered client's settings.
func checkClient(c *store.Client) error {
	switch c.TokenEndpointAuthMethod {
	case meta.AuthMethodClientSecretBasic, meta.AuthMethodClientSecretPost, meta.AuthMethodPrivateKeyJWT, meta.AuthMethodNone:
	default:
		return fmt.Errorf("unsupported --auth-method %q", c.TokenEndpointAuthMethod)
	}
	for _, g := range c.GrantTypes {
		switch g {
		case meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials, meta.GrantTypeJWTBearer:
		default:
			return fmt.Errorf("unsupported --grant %q", g)
		}
	}
	if c.TokenEndpointAuthMethod == meta.AuthMethodNone && slices.Contains(c.GrantTypes, meta.GrantTypeClientCredentials) {
		return errors.New("client_credentials needs a confidential client (not --auth-method none)")
	}
	if slices.Contains(c.GrantTypes, meta.GrantTypeAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return errors.New("the authorization_code grant needs at least one --redirect-uri")
	}
	for _, ru := range c.RedirectURIs {
		if err := authserver.CheckRedirectURI(ru); err != nil {
			return err
		}
	}
	return nil
}
