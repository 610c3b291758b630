// Package policycmd provides the `mcpgate policy` commands: `validate`
// checks policy files (and optionally a rate-limits file) offline, and
// `test` evaluates one request against them and prints the decision.
package policycmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
)

// Commands returns the `policy` command tree.
//
// sources, if not nil, returns the identity attributes ("groups", "roles",
// "email", "idp") the configured sources of identity provide, and ok=false
// when no configuration was named; `policy validate` then warns about
// policies that read a principal attribute no source provides.
func Commands(sources func(ctx context.Context) (provided []string, ok bool, err error)) []*cobra.Command {
	root := &cobra.Command{
		Use:   "policy",
		Short: "Validate Cedar policies and evaluate requests against them offline",
	}
	root.AddCommand(validateCommand(sources), testCommand())
	return []*cobra.Command{root}
}

func validateCommand(sources func(ctx context.Context) ([]string, bool, error)) *cobra.Command {
	var limits string
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check policy files or directories of *.cedar files",
		Long: `Parses every policy file named (directories are searched recursively for
*.cedar files) and checks it against the mcpgate entity model: known entity
types, known actions and action groups, Tool/Prompt/Completion ids of the
form "<upstream>/<name>", unique @id annotations and valid @approval
annotations. Every problem is printed with its file:line:column.

With --config (or --data-dir), it also warns about each policy that reads
a principal attribute (groups, roles, email, idp) that no configured source
of identity provides: no enterprise identity provider is configured
(oauth.trusted_issuers, oauth.oidc) and no local user has it. Such a
condition sees an empty set or string for every principal.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := policy.NewEngine(&policy.Options{Paths: args})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d policies, version %s\n", e.Len(), e.Version())
			if sources != nil {
				provided, ok, err := sources(cmd.Context())
				if err != nil {
					return fmt.Errorf("reading the configured sources of identity: %w", err)
				}
				if ok {
					for _, w := range e.AttributeWarnings(provided) {
						fmt.Fprintf(cmd.OutOrStdout(), "warning: %s\n", w)
					}
				}
			}
			if limits != "" {
				cfg, err := ratelimit.LoadConfig(limits)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d rate limits in %s\n", len(cfg.Limits), limits)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&limits, "limits", "", "also validate this rate-limits file (YAML or JSON)")
	return cmd
}

type testFlags struct {
	policies       []string
	denyByDefault  bool
	principal      string
	client         string
	clientName     string
	registration   string
	idp            string
	groups, roles  []string
	email, name    string
	session        string
	action         string
	resource       string
	upstream       string
	args           string
	scopes         []string
	at             string
	sourceIP       string
	clientMetadata string
	asJSON         bool
	expect         string
	// A task-augmented tools/call (context.task).
	task         bool
	taskTTL      time.Duration
	runningTasks int
}

// output is the JSON form of a decision printed by `policy test --json`.
type output struct {
	Decision        string   `json:"decision"`
	RequireApproval bool     `json:"require_approval"`
	Reason          string   `json:"reason"`
	Policies        []string `json:"policies"`
	Errors          []string `json:"errors,omitempty"`
	PolicyVersion   string   `json:"policy_version"`
	// Task limits of the permits of an allow (@max_task_ttl,
	// @max_concurrent_tasks); with --task only.
	MaxTaskTTL         string `json:"max_task_ttl,omitempty"`
	MaxConcurrentTasks int    `json:"max_concurrent_tasks,omitempty"`
}

func testCommand() *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Evaluate one request against the policies and print the decision",
		Long: `Builds a request the way the gateway does and prints the decision, the
deciding policies and the policy-set version.

  --principal  alice | User::"alice" | Client::"reporter" (a client acting
               on its own, registration "m2m" unless --registration says
               otherwise)
  --resource   Tool::"fs/fs_read" | fs/fs_read (a tool) | Prompt::"up/name" |
               Completion::"up/name" | Resource::"file:///x" (with --upstream) |
               Task::"id" | Upstream::"name"
  --action     the MCP method: tools/call, tools/list, resources/read, ...

With --expect, the command fails unless the outcome is the one given, so
policy tests can run in CI.`,
		Example: `  mcpgate policy test --policies policies/ --principal alice \
    --client https://app.example/cimd.json --registration cimd \
    --action tools/call --resource 'Tool::"fs/fs_read"' \
    --args '{"path":"/srv/docs/a.txt"}' --expect allow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTest(cmd.OutOrStdout(), &f) },
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.policies, "policies", nil, "policy file or directory (repeatable)")
	fl.BoolVar(&f.denyByDefault, "deny-by-default", false, "deny everything when no policy is loaded")
	fl.StringVar(&f.principal, "principal", "", `the user ("alice" or User::"alice") or a machine-to-machine client (Client::"id")`)
	fl.StringVar(&f.client, "client", "", "the OAuth client id acting for the user")
	fl.StringVar(&f.clientName, "client-name", "", "the client's name")
	fl.StringVar(&f.registration, "registration", "", "how the client registered: cimd, dynamic, pre-registered, m2m, enterprise")
	fl.StringVar(&f.idp, "idp", "", "issuer of the identity provider that vouched for the principal")
	fl.StringArrayVar(&f.groups, "group", nil, "a group of the principal (repeatable): principal.groups")
	fl.StringArrayVar(&f.roles, "role", nil, "a role of the principal (repeatable): principal.roles")
	fl.StringVar(&f.email, "email", "", "the principal's email: principal.email")
	fl.StringVar(&f.name, "name", "", "the user's display name: principal.name")
	fl.StringVar(&f.session, "session", "", "session id")
	fl.StringVar(&f.action, "action", "", "MCP method, e.g. tools/call")
	fl.StringVar(&f.resource, "resource", "", `resource, e.g. Tool::"fs/fs_read"`)
	fl.StringVar(&f.upstream, "upstream", "", "upstream of a Resource or Task")
	fl.StringVar(&f.args, "args", "", "arguments as a JSON object")
	fl.StringSliceVar(&f.scopes, "scopes", nil, "token scopes (comma-separated or repeated)")
	fl.StringVar(&f.at, "time", "", "request time, RFC 3339 (default now)")
	fl.StringVar(&f.sourceIP, "source-ip", "", "caller address")
	fl.StringVar(&f.clientMetadata, "client-metadata", "", "client metadata as a JSON object")
	fl.BoolVar(&f.asJSON, "json", false, "print the decision as JSON")
	fl.StringVar(&f.expect, "expect", "", "fail unless the outcome is allow, deny or approval")
	fl.BoolVar(&f.task, "task", false, "the call asks to run as a task (context.task); implied by --task-ttl and --running-tasks")
	fl.DurationVar(&f.taskTTL, "task-ttl", 0, "the ttl the task asks for: context.task.ttl")
	fl.IntVar(&f.runningTasks, "running-tasks", 0, "the principal's running tasks: context.task.running")
	_ = cmd.MarkFlagRequired("policies")
	_ = cmd.MarkFlagRequired("action")
	_ = cmd.MarkFlagRequired("resource")
	return cmd
}

func runTest(w io.Writer, f *testFlags) error {
	switch f.expect {
	case "", "allow", "deny", "approval":
	default:
		return fmt.Errorf("--expect must be allow, deny or approval, got %q", f.expect)
	}
	req, err := buildRequest(f)
	if err != nil {
		return err
	}
	e, err := policy.NewEngine(&policy.Options{Paths: f.policies, DenyByDefault: f.denyByDefault})
	if err != nil {
		return err
	}
	d := e.Decide(req)
	out := output{Decision: "deny", RequireApproval: d.RequireApproval, Reason: d.Reason,
		Policies: d.Policies, Errors: d.Errors, PolicyVersion: d.PolicyVersion}
	if d.Allow {
		out.Decision = "allow"
	}
	if out.Policies == nil {
		out.Policies = []string{}
	}
	if d.Task.MaxTTL > 0 {
		out.MaxTaskTTL = d.Task.MaxTTL.String()
	}
	out.MaxConcurrentTasks = d.Task.MaxConcurrent
	if f.asJSON {
		b, err := json.Marshal(out, jsontext.WithIndent("  "))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", b)
	} else {
		fmt.Fprintf(w, "decision: %s", out.Decision)
		if d.RequireApproval {
			fmt.Fprint(w, " (approval required)")
		}
		fmt.Fprintf(w, "\nreason:   %s\npolicies: %s\nversion:  %s\n", d.Reason, strings.Join(d.Policies, ", "), d.PolicyVersion)
		if d.Task.MaxTTL > 0 {
			fmt.Fprintf(w, "max task ttl: %s (policy %s)\n", d.Task.MaxTTL, d.Task.MaxTTLPolicy)
		}
		if d.Task.MaxConcurrent > 0 {
			fmt.Fprintf(w, "max concurrent tasks: %d (policy %s)\n", d.Task.MaxConcurrent, d.Task.MaxConcurrentPolicy)
		}
		for _, e := range d.Errors {
			fmt.Fprintf(w, "error:    %s\n", e)
		}
	}
	got := out.Decision
	if d.Allow && d.RequireApproval {
		got = "approval"
	}
	if f.expect != "" && got != f.expect {
		return fmt.Errorf("expected %s, got %s", f.expect, got)
	}
	return nil
}

// buildRequest builds the request of the flags with BuildRequest.
func buildRequest(f *testFlags) (*policy.Request, error) {
	spec := &RequestSpec{
		Principal: f.principal, Client: f.client, ClientName: f.clientName, Registration: f.registration,
		IdP: f.idp, Session: f.session, Groups: f.groups, Roles: f.roles, Email: f.email, Name: f.name,
		Action: f.action, Resource: f.resource, Upstream: f.upstream, Scopes: f.scopes, SourceIP: f.sourceIP,
	}
	if f.args != "" {
		v := jsontext.Value(f.args)
		if !v.IsValid() || v.Kind() != '{' {
			return nil, errors.New("--args: not a valid JSON object (duplicate names and invalid UTF-8 are refused)")
		}
		spec.Arguments = v
	}
	if f.clientMetadata != "" {
		if err := json.Unmarshal([]byte(f.clientMetadata), &spec.ClientMetadata); err != nil {
			return nil, fmt.Errorf("--client-metadata: %w", err)
		}
	}
	if f.task || f.taskTTL != 0 || f.runningTasks != 0 {
		if f.taskTTL < 0 || f.runningTasks < 0 {
			return nil, errors.New("--task-ttl and --running-tasks must not be negative")
		}
		spec.Task = &policy.TaskContext{TTL: f.taskTTL, Running: f.runningTasks}
	}
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return nil, fmt.Errorf("--time: %w", err)
		}
		spec.Time = t
	}
	req, err := BuildRequest(spec)
	var fe *FieldError
	if errors.As(err, &fe) {
		flag := map[string]string{"arguments": "--args", "task": "--task-ttl"}[fe.Field]
		return nil, fmt.Errorf("%s: %w", cmp.Or(flag, "--"+fe.Field), fe.Err)
	}
	return req, err
}

func parseUID(s string) (types.EntityUID, error) {
	var uid types.EntityUID
	if err := uid.UnmarshalCedar([]byte(s)); err != nil {
		return uid, fmt.Errorf("%q is not an entity like Type::\"id\": %w", s, err)
	}
	return uid, nil
}

func parseResource(s, upstream string) (policy.Resource, error) {
	if !strings.Contains(s, "::") {
		s = fmt.Sprintf("%s::%q", policy.TypeTool, s)
	}
	uid, err := parseUID(s)
	if err != nil {
		return policy.Resource{}, err
	}
	id := string(uid.ID)
	split := func(kind string) (policy.Resource, error) {
		up, name, ok := strings.Cut(id, "/")
		if !ok || up == "" || name == "" {
			return policy.Resource{}, fmt.Errorf("%s ids have the form \"<upstream>/<name>\", got %q", uid.Type, id)
		}
		return policy.Resource{Kind: kind, Upstream: up, Name: name}, nil
	}
	switch uid.Type {
	case policy.TypeTool:
		return split(policy.KindTool)
	case policy.TypePrompt:
		return split(policy.KindPrompt)
	case policy.TypeCompletion:
		return split(policy.KindCompletion)
	case policy.TypeResource:
		if upstream == "" {
			return policy.Resource{}, errors.New("a Resource needs an upstream")
		}
		return policy.Resource{Kind: policy.KindResource, Upstream: upstream, Name: id}, nil
	case policy.TypeTask:
		return policy.Resource{Kind: policy.KindTask, Upstream: upstream, Name: id}, nil
	case policy.TypeUpstream:
		return policy.Resource{Kind: policy.KindUpstream, Upstream: id}, nil
	}
	return policy.Resource{}, fmt.Errorf("unknown resource type %q", uid.Type)
}
