// Package inventorycmd provides the `mcpgate inventory` and `mcpgate
// revoke` commands, which read and act on the inventory kept in the
// gateway's SQLite store.
//
// The command line works on the database only, with the gateway stopped
// or running: the gateway records its clients' sessions, its tasks and its
// upstreams there, so `inventory` lists them. `revoke` records the
// revocation and revokes the tokens in the database;
// a running gateway sharing that database refuses the identity from its
// next revocation refresh (1 second by default) and closes its sessions
// and tasks when it syncs (inventory.Revoker.Run).
package inventorycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

// Kinds are the values of `inventory list --kind`.
var kinds = []string{"users", "clients", "upstreams", "sessions", "grants", "tasks", "credentials", "idps", "revocations"}

// Commands returns the `inventory`, `revoke` and `reinstate` command trees. dataDir is
// called when a command runs and names the directory holding the store.
func Commands(dataDir func() string) []*cobra.Command {
	return []*cobra.Command{inventoryCommand(dataDir), revokeCommand(dataDir), reinstateCommand(dataDir)}
}

// openStore opens the database; create says whether a missing database
// may be created.
func openStore(ctx context.Context, dataDir func() string, create bool) (datadir.DB, error) {
	return datadir.OpenCommand(ctx, dataDir(), create)
}

func withInventory(dataDir func() string, create bool, fn func(cmd *cobra.Command, args []string, st datadir.DB, inv *inventory.Inventory) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := openStore(cmd.Context(), dataDir, create)
		if err != nil {
			return err
		}
		defer st.Close()
		inv, err := inventory.New(st, st, nil)
		if err != nil {
			return err
		}
		return fn(cmd, args, st, inv)
	}
}

// withAudit is withInventory for commands that act: the audit log is
// opened before fn runs (an act that cannot be recorded is not carried
// out), and fn records the act with rec.
func withAudit(dataDir func() string, create bool, fn func(cmd *cobra.Command, args []string, st datadir.DB, inv *inventory.Inventory, rec *cliaudit.Recorder) error) func(*cobra.Command, []string) error {
	return withInventory(dataDir, create, func(cmd *cobra.Command, args []string, st datadir.DB, inv *inventory.Inventory) (err error) {
		rec, err := cliaudit.Open(cmd.Context(), st, dataDir())
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, rec.Close()) }()
		return fn(cmd, args, st, inv, rec)
	})
}

// byDetail notes the --by name when it is not the default one.
func byDetail(by string) string {
	if by == defaultBy() {
		return ""
	}
	return fmt.Sprintf(" (recorded as by %q)", by)
}

// DefaultBy names the operator of the command line ("cli:<OS user>"), as
// approvals and revocations record it by default.
func DefaultBy() string { return defaultBy() }

// defaultBy names the operator for approvals and revocations.
func defaultBy() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func inventoryCommand(dataDir func() string) *cobra.Command {
	var kind string
	var asJSON bool
	listRun := withInventory(dataDir, false, func(cmd *cobra.Command, _ []string, _ datadir.DB, inv *inventory.Inventory) error {
		if kind != "" && !contains(kinds, kind) {
			return fmt.Errorf("unknown --kind %q (want one of %s)", kind, strings.Join(kinds, ", "))
		}
		g, err := inv.Graph(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), selectKind(g, kind))
		}
		return printGraph(cmd.OutOrStdout(), g, kind)
	})
	inv := &cobra.Command{
		Use:   "inventory",
		Short: "List identities, clients, upstreams, grants and execution paths",
		Long: `List what the gateway knows: users (and the identity provider that vouched for
them), OAuth clients (how they registered, metadata snapshot, redirect hosts,
key fingerprints, first and last seen, status), trusted identity providers,
upstream servers (transport, URL or command, credential type, owner) with a
fingerprint, approval state and approver of each tool, per-user upstream
credentials, live grants, live sessions (transport, client, source address,
since when), tasks (owner, upstream, status, ttl) and revocations. Everything
is read from the database: the gateway may be stopped or running.`,
		Args: cobra.NoArgs,
		RunE: listRun,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the inventory (all kinds, or one with --kind)",
		Args:  cobra.NoArgs,
		RunE:  listRun,
	}
	for _, c := range []*cobra.Command{inv, list} {
		c.Flags().StringVar(&kind, "kind", "", "list only one kind: "+strings.Join(kinds, "|"))
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	}

	var showJSON bool
	show := &cobra.Command{
		Use:   "show KIND ID | show PRINCIPAL",
		Short: "Walk the paths through a user, client, session, upstream or tool: user → clients → sessions → upstreams → credentials → tools",
		Long: `Walk the execution paths through one entity, from the database:

  mcpgate inventory show user alice
  mcpgate inventory show client https://app.example/client.json
  mcpgate inventory show session 3f1c…
  mcpgate inventory show upstream fs
  mcpgate inventory show tool fs/read_file

A user leads to the clients it uses, each with its grants, live sessions and
tasks; a session to the upstreams it can reach, the credential the gateway uses
there (the user's own or the gateway's shared one) and the tools reachable with
it. Policy may narrow what is reachable, call by call. With one argument, the
principal's paths, grants, credentials and revocations are shown as before.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: withInventory(dataDir, false, func(cmd *cobra.Command, args []string, _ datadir.DB, inv *inventory.Inventory) error {
			g, err := inv.Graph(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return printWalk(cmd.OutOrStdout(), g, args[0], args[1], showJSON)
			}
			return printPrincipal(cmd.OutOrStdout(), g, args[0], showJSON)
		}),
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var by string
	approveTool := &cobra.Command{
		Use:   "approve-tool UPSTREAM TOOL",
		Short: "Approve the current definition of an upstream tool (clears the changed flag, or admits a new tool held by new_tools: approve)",
		Args:  cobra.ExactArgs(2),
		RunE: withAudit(dataDir, false, func(cmd *cobra.Command, args []string, st datadir.DB, inv *inventory.Inventory, rec *cliaudit.Recorder) error {
			if err := inv.ApproveTool(cmd.Context(), args[0], args[1], by); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("upstream %s has no tool %q in the inventory", args[0], args[1])
				}
				return err
			}
			r, err := st.GetToolRecord(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionToolApproved, Upstream: args[0], Target: args[0] + "/" + args[1],
				Error: "tool definition approved: sha256 " + r.Digest + byDetail(by)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved tool %s of upstream %s (definition sha256 %s)\n", args[1], args[0], r.Digest)
			return nil
		}),
	}
	approveClient := &cobra.Command{
		Use:   "approve-client CLIENT_ID",
		Short: "Approve a client's current redirect URIs, keys (inline and behind jwks_uri) and document (clears the changed flag; admits a client pending approval)",
		Args:  cobra.ExactArgs(1),
		RunE: withAudit(dataDir, false, func(cmd *cobra.Command, args []string, st datadir.DB, inv *inventory.Inventory, rec *cliaudit.Recorder) error {
			if err := inv.ApproveClient(cmd.Context(), args[0], by); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("client %q is not in the inventory", args[0])
				}
				return err
			}
			r, err := st.GetClientRecord(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			admitted := ""
			// A client waiting for admission is admitted with its metadata
			// (as "client approve" does); a refused one stays refused.
			if c, err := st.GetClient(cmd.Context(), args[0]); err == nil && c.Status == store.ClientPending {
				if err := st.SetClientStatus(cmd.Context(), args[0], store.ClientApproved, by, time.Now()); err != nil {
					return err
				}
				admitted = "; pending client admitted"
			}
			keys := listOrNone(r.KeyThumbprints)
			if !r.RemoteKeysFetchedAt.IsZero() {
				keys += fmt.Sprintf("; keys behind jwks_uri %s: %s", r.RemoteKeysURI, listOrNone(r.RemoteKeyThumbprints))
			}
			if err := rec.Record(cmd.Context(), &audit.Record{Action: cliaudit.ActionClientApproved, Target: args[0],
				Error: fmt.Sprintf("client approved: redirect URIs %s; keys %s%s%s", listOrNone(r.RedirectURIs), keys, admitted, byDetail(by))}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved client %s: redirect URIs %s; keys %s\n", args[0], listOrNone(r.RedirectURIs), keys)
			return nil
		}),
	}
	for _, c := range []*cobra.Command{approveTool, approveClient} {
		c.Flags().StringVar(&by, "by", defaultBy(), "who approves (recorded)")
	}
	inv.AddCommand(list, show, approveTool, approveClient)
	return inv
}

func revokeCommand(dataDir func() string) *cobra.Command {
	rev := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a user, client, grant, upstream credential or identity provider",
		Long: `Revoke an identity in one place. The revocation is recorded in the database (a
restarted gateway still refuses it) and every live token of the identity is
revoked there. A running gateway using the same database refuses the identity
within its revocation refresh interval (1 second by default) and closes its
sessions and cancels its tasks when it syncs. The command exits non-zero if any
step failed.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown revocation kind %q (want user, client, grant, upstream-credential or idp)", args[0])
		},
	}
	var by, reason string
	for _, k := range []struct{ kind, arg, short string }{
		{store.RevokeUser, "USERNAME", "Revoke a user (local account or token subject)"},
		{store.RevokeClient, "CLIENT_ID", "Revoke an OAuth client"},
		{store.RevokeGrant, "GRANT_ID", "Revoke one grant (token family id, or a token id without family)"},
		{store.RevokeUpstreamCredential, "UPSTREAM/PRINCIPAL", "Revoke a principal's credential for an upstream"},
		{store.RevokeIdP, "ISSUER", "Stop trusting an identity provider and revoke what it vouched for"},
	} {
		c := &cobra.Command{
			Use:   k.kind + " " + k.arg,
			Short: k.short,
			Args:  cobra.ExactArgs(1),
			RunE: withAudit(dataDir, true, func(cmd *cobra.Command, args []string, st datadir.DB, _ *inventory.Inventory, rec *cliaudit.Recorder) error {
				return Revoke(cmd.Context(), st, rec, cmd.OutOrStdout(), k.kind, args[0], by, reason)
			}),
		}
		c.Flags().StringVar(&by, "by", defaultBy(), "who revokes (recorded)")
		c.Flags().StringVar(&reason, "reason", "", "why (recorded)")
		rev.AddCommand(c)
	}
	return rev
}

// Revoke revokes an identity from the command line, on the database st:
// the revocation is recorded and the identity's tokens revoked there (a
// running gateway sharing the database closes its sessions, cancels its
// tasks and ends its upstream access when it next syncs, within a second;
// a stopped one does so at its next start, before it serves). The act is
// recorded in the audit chain with rec, and the outcome of every step is
// written to out. It is `mcpgate revoke KIND ID`, and what `mcpgate user
// remove` and `mcpgate client remove` do first.
func Revoke(ctx context.Context, st datadir.DB, rec *cliaudit.Recorder, out io.Writer, kind, id, by, reason string) error {
	if _, err := inventory.ParseKind(kind, id); err != nil {
		return err
	}
	rv, err := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{
		Hooks: inventory.RevocationHooks{RevokeTokens: inventory.StoreTokenRevoker(st, nil)},
		// The database may be busy with a running gateway.
		Deadline: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	res, err := rv.RevokeWithReason(ctx, kind, id, by, reason)
	if res != nil || err == nil {
		r := &audit.Record{Action: cliaudit.ActionRevocation, Target: kind + ":" + id,
			Error: fmt.Sprintf("%s %s revoked; reason %q%s", kind, id, reason, byDetail(by))}
		if kind == store.RevokeUpstreamCredential {
			r.Upstream, _, _ = strings.Cut(id, "/")
		}
		if err != nil {
			r.Outcome, r.Error = audit.OutcomeError, r.Error+"; incomplete: "+err.Error()
		}
		if aerr := rec.Record(ctx, r); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	if res != nil {
		fmt.Fprint(out, res.Summary())
		fmt.Fprintln(out, "sessions, tasks and upstream access live in the running gateway: it ends them when it next syncs revocations (within a second), or at its next start if it is stopped")
	}
	if err != nil {
		return fmt.Errorf("revocation incomplete: %w", err)
	}
	return nil
}

func reinstateCommand(dataDir func() string) *cobra.Command {
	re := &cobra.Command{
		Use:   "reinstate",
		Short: "Lift a revocation of a user, client, grant, upstream credential or identity provider",
		Long: `Lift a revocation recorded with "mcpgate revoke". The identity may obtain new
tokens again; tokens revoked with it stay revoked. A running gateway using the
same database stops refusing the identity within its revocation refresh
interval (1 second by default).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown revocation kind %q (want user, client, grant, upstream-credential or idp)", args[0])
		},
	}
	var by string
	for _, k := range []struct{ kind, arg string }{
		{store.RevokeUser, "USERNAME"},
		{store.RevokeClient, "CLIENT_ID"},
		{store.RevokeGrant, "GRANT_ID"},
		{store.RevokeUpstreamCredential, "UPSTREAM/PRINCIPAL"},
		{store.RevokeIdP, "ISSUER"},
	} {
		c := &cobra.Command{
			Use:   k.kind + " " + k.arg,
			Short: "Lift the revocation of a " + k.kind,
			Args:  cobra.ExactArgs(1),
			RunE: withAudit(dataDir, false, func(cmd *cobra.Command, args []string, st datadir.DB, _ *inventory.Inventory, rec *cliaudit.Recorder) error {
				ctx := cmd.Context()
				if _, err := inventory.ParseKind(k.kind, args[0]); err != nil {
					return err
				}
				rv, err := inventory.NewRevoker(ctx, st, &inventory.RevokerOptions{Deadline: 5 * time.Second})
				if err != nil {
					return err
				}
				if err := rv.Reinstate(ctx, k.kind, args[0], by); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("%s %q is not revoked", k.kind, args[0])
					}
					return err
				}
				r := &audit.Record{Action: cliaudit.ActionRevocationLifted, Target: k.kind + ":" + args[0],
					Error: fmt.Sprintf("revocation of %s %s lifted%s", k.kind, args[0], byDetail(by))}
				if k.kind == store.RevokeUpstreamCredential {
					r.Upstream, _, _ = strings.Cut(args[0], "/")
				}
				if err := rec.Record(ctx, r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "reinstated %s %s\n", k.kind, args[0])
				return nil
			}),
		}
		c.Flags().StringVar(&by, "by", defaultBy(), "who reinstates (recorded)")
		re.AddCommand(c)
	}
	return re
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return strings.Join(v, ", ")
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v, jsontext.WithIndent("  "))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// selectKind returns the part of g that --kind asks for ("" for all).
func selectKind(g *inventory.Graph, kind string) any {
	switch kind {
	case "users":
		return g.Users
	case "clients":
		return g.Clients
	case "upstreams":
		return g.Upstreams
	case "sessions":
		return g.Sessions
	case "grants":
		return g.Grants
	case "tasks":
		return g.Tasks
	case "credentials":
		return g.Credentials
	case "idps":
		return g.IdentityProviders
	case "revocations":
		return g.Revocations
	}
	return g
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "-"
	}
	return d
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printGraph prints the sections of g (one if kind is set).
func printGraph(out io.Writer, g *inventory.Graph, kind string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	section := func(k, title string) bool {
		if kind != "" && kind != k {
			return false
		}
		if kind == "" {
			fmt.Fprintf(w, "\n== %s\n", title)
		}
		return true
	}
	if section("users", "users") {
		fmt.Fprintln(w, "NAME\tLOCAL\tIDP\tCREATED\tSTATUS")
		for _, u := range g.Users {
			st := "active"
			if u.Revoked {
				st = "REVOKED"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.Name, yes(u.Local), dash(u.IdP), ts(u.CreatedAt), st)
		}
	}
	if section("clients", "clients") {
		fmt.Fprintln(w, "CLIENT_ID\tMETHOD\tM2M\tNAME\tREDIRECT_HOSTS\tKEYS\tFIRST_SEEN\tLAST_SEEN\tSTATUS")
		for _, c := range g.Clients {
			st := "approved"
			switch {
			case c.Revoked:
				st = "REVOKED"
			case c.Admission == store.ClientRefused:
				st = "REFUSED by " + dash(c.AdmissionBy)
			case c.Admission == store.ClientPending:
				st = "PENDING approval (client approve " + c.ID + ")"
			case c.Flagged:
				st = "CHANGED since " + ts(c.ChangedAt) + " (approve-client to accept)"
			case c.ApprovedAt.IsZero():
				st = "-"
			}
			var keys []string
			for _, k := range c.KeyThumbprints {
				keys = append(keys, short(k))
			}
			for _, k := range c.RemoteKeyThumbprints {
				keys = append(keys, short(k)+"(uri)")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, dash(c.RegistrationMethod), yes(c.MachineToMachine), dash(c.Name),
				dash(strings.Join(c.RedirectHosts, ",")), dash(strings.Join(keys, ",")), ts(c.FirstSeen), ts(c.LastSeen), st)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		first := true
		for i := range g.Clients {
			c := &g.Clients[i]
			if len(c.KeyThumbprints) == 0 && len(c.RemoteKeyThumbprints) == 0 && c.JWKSURI == "" && c.DocumentDigest == "" && !c.Flagged {
				continue
			}
			if first {
				fmt.Fprintln(out, "\nclient trust objects (RFC 7638 key thumbprints, RFC 8785 document digests):")
				first = false
			}
			printClientTrust(out, c)
		}
	}
	if section("idps", "identity providers") {
		fmt.Fprintln(w, "ISSUER\tKIND\tNAME\tSTATUS")
		for _, p := range g.IdentityProviders {
			st := "trusted"
			if p.Distrusted {
				st = "DISTRUSTED"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Issuer, dash(p.Kind), dash(p.Name), st)
		}
	}
	if section("upstreams", "upstreams") {
		fmt.Fprintln(w, "UPSTREAM\tTRANSPORT\tURL_OR_COMMAND\tCREDENTIAL\tOWNER\tTOOLS\tSTATE")
		for _, u := range g.Upstreams {
			target, cred := u.URL, dash(u.CredentialType)
			if len(u.Command) > 0 {
				target = strings.Join(u.Command, " ")
			}
			if u.PerUser {
				cred += " (per user)"
			}
			if !u.Configured {
				target = "(not in the configuration the gateway last started with)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", u.Name, dash(u.Transport), dash(target), cred, dash(u.Owner), len(u.Tools), upstreamState(u.State))
		}
		if kind == "" {
			fmt.Fprintf(w, "\n== tools\n")
		} else {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "UPSTREAM\tTOOL\tSHA256\tAPPROVED_SHA256\tAPPROVED_BY\tLAST_SEEN\tSTATUS")
		for _, u := range g.Upstreams {
			for _, t := range u.Tools {
				st := "approved"
				switch {
				case t.Pending:
					st = "NEW, pending approval (approve-tool to accept)"
				case t.Flagged:
					st = "CHANGED since " + ts(t.ChangedAt) + " (approve-tool to accept)"
				case t.Removed:
					st = "removed"
				}
				if (t.Flagged || t.Pending) && t.Removed {
					st += ", removed"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, t.Name, short(t.Digest), short(t.ApprovedDigest), dash(t.ApprovedBy), ts(t.LastSeen), st)
			}
		}
	}
	if section("credentials", "per-user upstream credentials") {
		fmt.Fprintln(w, "UPSTREAM\tPRINCIPAL\tKIND\tSCOPE\tEXPIRES\tLAST_USED\tIDP\tID_JAG_JTI")
		for _, c := range g.Credentials {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Upstream, c.Principal, dash(c.Kind), dash(c.Scope), ts(c.ExpiresAt), ts(c.LastUsed), dash(c.IdP), dash(c.GrantID))
		}
	}
	if section("grants", "live grants") {
		fmt.Fprintln(w, "GRANT\tUSER\tCLIENT\tSCOPES\tACCESS_TOKENS\tREFRESH\tEXPIRES\tSTATUS")
		for _, gr := range g.Grants {
			st := "live"
			if gr.Revoked {
				st = "REVOKED"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", gr.ID, dash(gr.User), gr.Client, dash(strings.Join(gr.Scopes, " ")),
				dash(strings.Join(gr.TokenIDs, ",")), gr.RefreshTokens, ts(gr.ExpiresAt), st)
		}
	}
	if section("sessions", "live sessions") {
		fmt.Fprintln(w, "SESSION\tPRINCIPAL\tCLIENT\tGRANT\tTRANSPORT\tSOURCE\tSINCE\tLAST_SEEN")
		for _, s := range g.Sessions {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Principal, dash(s.ClientID), dash(s.Grant), dash(s.Transport), dash(s.SourceAddr), ts(s.Created), ts(s.LastSeen))
		}
	}
	if section("tasks", "tasks") {
		fmt.Fprintln(w, "TASK\tOWNER\tCLIENT\tUPSTREAM\tTOOL\tSTATUS\tTTL\tCREATED\tLAST_CHANGE")
		for _, t := range g.Tasks {
			ttl := "-"
			if t.TTLSeconds > 0 {
				ttl = (time.Duration(t.TTLSeconds) * time.Second).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Owner, dash(t.ClientID), dash(t.Upstream), dash(t.Tool), dash(t.Status), ttl, ts(t.Created), ts(t.Updated))
		}
	}
	if section("revocations", "revocations") {
		fmt.Fprintln(w, "KIND\tID\tBY\tAT\tREASON")
		for _, r := range g.Revocations {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Kind, r.ID, dash(r.By), ts(r.At), dash(r.Reason))
		}
	}
	return w.Flush()
}

// printClientTrust prints a client's fingerprints and, while it is
// flagged, the old (approved) and new value of each changed trust object.
func printClientTrust(out io.Writer, c *inventory.Client) {
	fmt.Fprintf(out, "%s\n", c.ID)
	var ap inventory.TrustObjects
	if c.Approved != nil {
		ap = *c.Approved
	}
	if c.DocumentDigest != "" {
		note := "approved"
		if ap.DocumentDigest != "" && ap.DocumentDigest != c.DocumentDigest {
			note = "approved " + ap.DocumentDigest
		}
		fmt.Fprintf(out, "  document sha256: %s (%s)\n", c.DocumentDigest, note)
	}
	fmt.Fprintf(out, "  keys (jwks): %s\n", listOrNone(c.KeyThumbprints))
	if c.JWKSURI != "" {
		fetched := "never fetched"
		if !c.RemoteKeysFetchedAt.IsZero() {
			fetched = "fetched " + ts(c.RemoteKeysFetchedAt)
		}
		fmt.Fprintf(out, "  keys behind jwks_uri %s (%s): %s\n", c.JWKSURI, fetched, listOrNone(c.RemoteKeyThumbprints))
	}
	for _, d := range c.Drift {
		fmt.Fprintf(out, "  CHANGED %s: old %s -> new %s\n", d.What, listOrNone(d.Old), listOrNone(d.New))
	}
	if c.Flagged {
		fmt.Fprintf(out, "  (mcpgate inventory approve-client %s accepts the new values)\n", c.ID)
	}
}

// principalView is the JSON form of `inventory show`.
type principalView struct {
	Principal   string                 `json:"principal"`
	User        *inventory.User        `json:"user,omitempty"`
	Client      *inventory.Client      `json:"client,omitempty"`
	Paths       []inventory.Path       `json:"paths"`
	Grants      []inventory.Grant      `json:"grants"`
	Credentials []inventory.Credential `json:"credentials"`
	Tasks       []inventory.Task       `json:"tasks"`
	Revocations []store.Revocation     `json:"revocations"`
}

func printPrincipal(out io.Writer, g *inventory.Graph, principal string, asJSON bool) error {
	v := principalView{Principal: principal, Paths: g.Paths(principal)}
	for i := range g.Users {
		if g.Users[i].Name == principal {
			v.User = &g.Users[i]
		}
	}
	for i := range g.Clients {
		if g.Clients[i].ID == principal {
			v.Client = &g.Clients[i]
		}
	}
	if v.User == nil && v.Client == nil {
		return fmt.Errorf("no user or client %q in the inventory", principal)
	}
	for _, gr := range g.Grants {
		if gr.User == principal || gr.Client == principal {
			v.Grants = append(v.Grants, gr)
		}
	}
	for _, c := range g.Credentials {
		if c.Principal == principal {
			v.Credentials = append(v.Credentials, c)
		}
	}
	for _, t := range g.Tasks {
		if t.Owner == principal {
			v.Tasks = append(v.Tasks, t)
		}
	}
	for _, r := range g.Revocations {
		if r.ID == principal || (v.User != nil && r.Kind == store.RevokeIdP && r.ID == v.User.IdP) || strings.HasSuffix(r.ID, "/"+principal) {
			v.Revocations = append(v.Revocations, r)
		}
	}
	if asJSON {
		return writeJSON(out, v)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if u := v.User; u != nil {
		st := "active"
		if u.Revoked {
			st = "REVOKED"
		}
		fmt.Fprintf(w, "user %s\tlocal: %s\tidp: %s\tstatus: %s\n", u.Name, yes(u.Local), dash(u.IdP), st)
	}
	if c := v.Client; c != nil {
		fmt.Fprintf(w, "client %s\tmethod: %s\tm2m: %s\tflagged: %s\trevoked: %s\n", c.ID, dash(c.RegistrationMethod), yes(c.MachineToMachine), yes(c.Flagged), yes(c.Revoked))
		if err := w.Flush(); err != nil {
			return err
		}
		printClientTrust(out, c)
	}
	fmt.Fprintln(w, "\npaths (user → client → session → upstream → credential):")
	for _, p := range v.Paths {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if len(v.Paths) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	if len(v.Grants) > 0 {
		fmt.Fprintln(w, "\ngrants:")
		for _, gr := range v.Grants {
			fmt.Fprintf(w, "  %s\tclient %s\tscopes %s\ttokens %s\texpires %s\trevoked %s\n", gr.ID, gr.Client, dash(strings.Join(gr.Scopes, " ")),
				dash(strings.Join(gr.TokenIDs, ",")), ts(gr.ExpiresAt), yes(gr.Revoked))
		}
	}
	if len(v.Credentials) > 0 {
		fmt.Fprintln(w, "\nupstream credentials:")
		for _, c := range v.Credentials {
			fmt.Fprintf(w, "  %s\t%s\tscope %s\texpires %s", c.Upstream, dash(c.Kind), dash(c.Scope), ts(c.ExpiresAt))
			if c.IdP != "" {
				fmt.Fprintf(w, "\tidp %s\tid-jag jti %s", c.IdP, dash(c.GrantID))
			}
			fmt.Fprintln(w)
		}
	}
	if len(v.Revocations) > 0 {
		fmt.Fprintln(w, "\nrevocations:")
		for _, r := range v.Revocations {
			fmt.Fprintf(w, "  %s %s\tby %s\tat %s\n", r.Kind, r.ID, dash(r.By), ts(r.At))
		}
	}
	return w.Flush()
}

// printWalk prints the walk through one entity (`inventory show KIND ID`).
func printWalk(out io.Writer, g *inventory.Graph, kind, id string, asJSON bool) error {
	n, err := g.Walk(kind, id)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, n)
	}
	var b strings.Builder
	n.Render(&b)
	b.WriteString("\n(reachable as the records say: every configured upstream, a per-user one only with the user's credential, approved tools; policy may narrow it call by call)\n")
	_, err = io.WriteString(out, b.String())
	return err
}

// upstreamState describes an upstream's state as the running gateway last
// wrote it: "ready since T", "backoff until T (N failures: error)", ...
func upstreamState(st *inventory.UpstreamState) string {
	if st == nil {
		return "-"
	}
	out := st.State
	switch {
	case !st.RetryAt.IsZero():
		out += " until " + ts(st.RetryAt)
	case !st.Since.IsZero():
		out += " since " + ts(st.Since)
	}
	if st.LastError != "" {
		out += fmt.Sprintf(" (%d failure%s, last: %s)", st.Failures, map[bool]string{true: "s", false: ""}[st.Failures != 1], st.LastError)
	}
	if st.State != "stopped" {
		out += ", as of " + ts(st.UpdatedAt)
	}
	return out
}
