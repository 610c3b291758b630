package policycmd

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/policy"
)

// RequestSpec is a request to decide as a person writes it: the flags of
// `mcpgate policy test` and the body of the console's dry run (POST
// /console/api/policies/dry-run) both become one, and BuildRequest turns
// it into the policy.Request the gateway would decide, so the two give
// the same decision for the same question.
type RequestSpec struct {
	// Principal is a user ("alice" or `User::"alice"`) or a client on its
	// own (`Client::"id"`, registration "m2m" unless Registration says
	// otherwise); empty with Client set for a client on its own.
	Principal string
	// Client, ClientName and Registration are the OAuth client acting for
	// the user; IdP is the issuer that vouched; Session the session id.
	Client, ClientName, Registration string
	IdP, Session                     string
	// Groups, Roles, Email and Name are the principal's attributes
	// (principal.groups, ...).
	Groups, Roles []string
	Email, Name   string
	// Action is the MCP method, one of policy.Actions(). Required.
	Action string
	// Resource is what the request acts on: an entity (`Tool::"up/name"`,
	// `Prompt::"up/name"`, `Completion::"up/name"`, `Resource::"uri"`,
	// `Task::"id"`, `Upstream::"name"`) or the bare form that Action
	// implies (ResourceKind): "up/name" of a tool, prompt or completion,
	// a resource's URI, a task id, or an upstream's name. List actions
	// and logging/setLevel also take a bare upstream name.
	Resource string
	// Upstream is the upstream of a resource or task (a resource needs
	// one), or of a client request when Resource is empty.
	Upstream string
	// Arguments is a JSON object: context.arguments.
	Arguments jsontext.Value
	// Scopes are the token's scopes; SourceIP the caller's address.
	Scopes   []string
	SourceIP string
	// ClientMetadata is the client's registered metadata.
	ClientMetadata map[string]any
	// Task describes the task a task-augmented call would create.
	Task *policy.TaskContext
	// Time is the request time; zero means now.
	Time time.Time
}

// FieldError is an error of BuildRequest about one field of a
// RequestSpec: "action", "principal", "resource", "arguments" or "task".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the error about the field.
func (e *FieldError) Unwrap() error { return e.Err }

// actionKinds is the kind of resource each governed method acts on, as
// the gateway decides it (list methods: the kind of the items listed,
// each decided at list time).
var actionKinds = map[string]string{
	"tools/list":                       policy.KindTool,
	"tools/call":                       policy.KindTool,
	"prompts/list":                     policy.KindPrompt,
	"prompts/get":                      policy.KindPrompt,
	"completion/complete":              policy.KindCompletion,
	"resources/list":                   policy.KindResource,
	"resources/templates/list":         policy.KindResource,
	"resources/read":                   policy.KindResource,
	"resources/subscribe":              policy.KindResource,
	"resources/unsubscribe":            policy.KindResource,
	"tasks/get":                        policy.KindTask,
	"tasks/result":                     policy.KindTask,
	"tasks/list":                       policy.KindTask,
	"tasks/cancel":                     policy.KindTask,
	"logging/setLevel":                 policy.KindUpstream,
	"sampling/createMessage":           policy.KindClientRequest,
	"elicitation/create":               policy.KindClientRequest,
	"roots/list":                       policy.KindClientRequest,
	"notifications/roots/list_changed": policy.KindClientRequest,
	"notifications/tasks/status":       policy.KindClientRequest,
}

// ResourceKind returns the kind of resource (policy.KindTool, ...) that
// the bare Resource of a request for action names, and whether action
// is a method the policy model governs.
func ResourceKind(action string) (string, bool) {
	k, ok := actionKinds[action]
	return k, ok
}

// isList reports whether action lists items (it may be decided on a
// whole upstream too).
func isList(action string) bool {
	return strings.HasSuffix(action, "/list") && !strings.HasPrefix(action, "roots/") && !strings.HasPrefix(action, "notifications/")
}

// BuildRequest builds the policy request of s, the way the gateway builds
// it for the same method, principal and resource.
func BuildRequest(s *RequestSpec) (*policy.Request, error) {
	if s.Action == "" {
		return nil, &FieldError{"action", errors.New("name the MCP method, such as tools/call")}
	}
	kind, ok := ResourceKind(s.Action)
	if !ok {
		return nil, &FieldError{"action", fmt.Errorf("%q is not a method the gateway decides; one of: %s", s.Action, strings.Join(policy.Actions(), ", "))}
	}
	req := &policy.Request{Action: s.Action, Scopes: s.Scopes, SourceAddr: s.SourceIP, Time: s.Time, ClientMetadata: s.ClientMetadata, Task: s.Task}
	req.Principal = policy.Principal{
		Client:  policy.Client{ID: s.Client, Name: s.ClientName, Registration: s.Registration},
		IdP:     s.IdP,
		Session: s.Session,
		Groups:  s.Groups,
		Roles:   s.Roles,
		Email:   s.Email,
		Name:    s.Name,
	}
	if err := setPrincipal(req, s.Principal); err != nil {
		return nil, &FieldError{"principal", err}
	}
	if req.Principal.User == "" && req.Principal.Client.ID != "" && req.Principal.Client.Registration == "" {
		req.Principal.Client.Registration = "m2m"
	}
	var err error
	if strings.Contains(s.Resource, "::") {
		req.Resource, err = parseResource(s.Resource, s.Upstream)
	} else {
		req.Resource, err = bareResource(s.Action, kind, s.Resource, s.Upstream)
	}
	if err != nil {
		return nil, &FieldError{"resource", err}
	}
	if len(s.Arguments) > 0 {
		if !s.Arguments.IsValid() || s.Arguments.Kind() != '{' {
			return nil, &FieldError{"arguments", errors.New("not a valid JSON object (duplicate names and invalid UTF-8 are refused)")}
		}
		req.Arguments = s.Arguments
	}
	if t := s.Task; t != nil && (t.TTL < 0 || t.Running < 0) {
		return nil, &FieldError{"task", errors.New("a task's ttl and running tasks must not be negative")}
	}
	return req, nil
}

// setPrincipal sets the user or the client on its own that p names.
func setPrincipal(req *policy.Request, p string) error {
	if !strings.Contains(p, "::") {
		req.Principal.User = p
		return nil
	}
	uid, err := parseUID(p)
	if err != nil {
		return err
	}
	switch uid.Type {
	case policy.TypeUser:
		req.Principal.User = string(uid.ID)
	case policy.TypeClient:
		if c := req.Principal.Client.ID; c != "" && c != string(uid.ID) {
			return errors.New("the principal names a Client and the client another")
		}
		req.Principal.Client.ID = string(uid.ID)
		if req.Principal.Client.Registration == "" {
			req.Principal.Client.Registration = "m2m"
		}
	default:
		return fmt.Errorf("want User::\"...\" or Client::\"...\", got %s", uid)
	}
	return nil
}

// bareResource reads the bare resource r of a request for action, whose
// resources are of kind.
func bareResource(action, kind, r, upstream string) (policy.Resource, error) {
	switch kind {
	case policy.KindTool, policy.KindPrompt, policy.KindCompletion:
		up, name, ok := strings.Cut(r, "/")
		if !ok && r != "" && isList(action) {
			return policy.Resource{Kind: policy.KindUpstream, Upstream: r}, nil
		}
		if !ok || up == "" || name == "" {
			return policy.Resource{}, fmt.Errorf("%s acts on a %s named \"<upstream>/<name>\", got %q", action, kind, r)
		}
		return policy.Resource{Kind: kind, Upstream: up, Name: name}, nil
	case policy.KindResource:
		switch {
		case upstream == "" && r != "" && isList(action):
			return policy.Resource{Kind: policy.KindUpstream, Upstream: r}, nil
		case upstream == "" || r == "":
			return policy.Resource{}, fmt.Errorf("%s acts on a resource: give its URI and its upstream", action)
		}
		return policy.Resource{Kind: policy.KindResource, Upstream: upstream, Name: r}, nil
	case policy.KindTask:
		if r == "" {
			return policy.Resource{}, fmt.Errorf("%s acts on a task: give its id", action)
		}
		return policy.Resource{Kind: policy.KindTask, Upstream: upstream, Name: r}, nil
	case policy.KindUpstream:
		if r == "" || strings.Contains(r, "/") {
			return policy.Resource{}, fmt.Errorf("%s acts on an upstream: give its name", action)
		}
		return policy.Resource{Kind: policy.KindUpstream, Upstream: r}, nil
	}
	// A request toward a client (policy.KindClientRequest).
	up := cmp.Or(r, upstream)
	if up == "" || strings.Contains(up, "/") {
		return policy.Resource{}, fmt.Errorf("%s is a request toward a client: give the upstream that sends it", action)
	}
	return policy.Resource{Kind: policy.KindClientRequest, Upstream: up, Name: action}, nil
}
