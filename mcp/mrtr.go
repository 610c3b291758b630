package mcp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// Multi round-trip requests (MRTR, revision 2026-07-28).
//
// A handler of tools/call, prompts/get or resources/read that needs input
// from the client (an elicitation, a sampling, the client's roots) calls
// ServerSession.RequestInput (or ElicitInput, SampleInput, ListRootsInput).
// One handler serves both generations:
//
//   - inside a legacy session, the call sends the client a real
//     server-to-client request and returns its answer;
//   - inside a modern request, the call returns the answer the client sent
//     with its retry (inputResponses), or records the request and returns
//     ErrInputRequired. The handler returns that error (or anything: the
//     recorded requests win), and the server answers with an
//     InputRequiredResult. When the client retries with the answers, the
//     handler runs again from the start and this time gets them.
//
// Answers from earlier rounds travel in requestState, so the handler sees
// every answer of every round (a replay): the server keeps nothing between
// rounds. requestState is integrity-protected with HMAC-SHA256 under
// ServerOptions.RequestStateKey and bound to the caller (the principal the
// transport names, see WithPrincipal), to the method and a digest of the
// request's params, and to an expiry (ServerOptions.RequestStateTTL); a
// state that fails any check is refused with -32602.

// ErrInputRequired is returned by RequestInput inside a modern request
// when the client has not yet answered: the handler should return it.
var ErrInputRequired = errors.New("mcp: input required from the client")

// InputRequest is one request for input a server makes of the client.
type InputRequest struct {
	// Method is MethodElicitationCreate, MethodSamplingCreateMessage or
	// MethodRootsList.
	Method string `json:"method"`
	// Params are the request's params (*ElicitParams,
	// *CreateMessageParams, nil for roots/list, or raw JSON).
	Params any `json:"params,omitzero"`
}

// InputRequiredResult is the interim result of a modern request that needs
// input from the client.
type InputRequiredResult struct {
	// Meta is the _meta field.
	Meta Meta `json:"_meta,omitzero"`
	// ResultType is "input_required".
	ResultType string `json:"resultType"`
	// InputRequests are the requests the client must answer, by key.
	InputRequests map[string]*InputRequest `json:"inputRequests,omitzero"`
	// RequestState is opaque to the client, which echoes it on its retry.
	RequestState string `json:"requestState,omitzero"`
}

// Result types.
const (
	ResultTypeComplete      = "complete"
	ResultTypeInputRequired = "input_required"
)

// Defaults of the request state.
const (
	// DefaultRequestStateTTL is how long a requestState stays valid
	// when ServerOptions.RequestStateTTL is zero.
	DefaultRequestStateTTL = 10 * time.Minute
	// MaxRequestStateBytes bounds the requestState a client may present.
	MaxRequestStateBytes = 1 << 20
)

// inputRound is the input state of one modern request.
type inputRound struct {
	mu        sync.Mutex
	responses map[string]jsontext.Value // answers: earlier rounds, then this one; nil for none
	pending   map[string]*InputRequest  // asked for and not answered
	verified  bool                      // the request carried a valid requestState
	calls     int                       // legacy-API input calls so far (nextInputKey)
}

// nextInputKey returns the key of the next input request a handler makes
// through the legacy API (CreateMessage, Elicit, ListRoots): the method and
// the call's rank, the same in every round as long as the handler makes its
// calls in the same order.
func (m *modernRequest) nextInputKey(method string) string {
	if m.input == nil {
		return method
	}
	m.input.mu.Lock()
	defer m.input.mu.Unlock()
	m.input.calls++
	return fmt.Sprintf("%s#%d", method, m.input.calls)
}

// mrtrParams are the MRTR members of a retried request's params.
type mrtrParams struct {
	InputResponses jsontext.Value `json:"inputResponses"`
	RequestState   *string        `json:"requestState"`
}

// stateBody is the signed content of a requestState.
type stateBody struct {
	Version   int                       `json:"v"`
	Principal string                    `json:"p"` // SHA-256 of the principal, base64url
	Method    string                    `json:"m"`
	Digest    string                    `json:"d"` // SHA-256 of the salient params, base64url
	Expires   int64                     `json:"x"` // Unix milliseconds
	Responses map[string]jsontext.Value `json:"r,omitzero"`
}

// serveWithInput serves tools/call, prompts/get or resources/read, which
// may answer with an InputRequiredResult.
func (ss *ServerSession) serveWithInput(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (any, error) {
	round, err := ss.server.openRound(ctx, m, req)
	if err != nil {
		return nil, err
	}
	m.input = round
	if req.Method == MethodToolsCall {
		if st := ss.server.toolFor(m.params.name); st != nil {
			support := taskSupport(st.tool)
			hasExt := clientHasTasksExtension(m.meta.ClientCapabilities)
			if support == TaskSupportRequired && !hasExt {
				return nil, missingTasksExtension("tool %q runs only as a task: the client must declare the %s extension", st.tool.Name, ExtensionTasks)
			}
			if support != TaskSupportForbidden && hasExt {
				return ss.serveTaskCapable(ctx, m, req, round)
			}
		}
	}
	var res any
	var herr error
	if req.Method == MethodToolsCall {
		res, herr = ss.callToolModern(ctx, m, req.Params)
	} else {
		res, herr = serverMethods[req.Method].fn(ss, ctx, req.Params)
	}
	return ss.server.inputOrResult(m, req, round, res, herr)
}

// inputOrResult turns a handler's outcome into the answer of a modern
// request: an InputRequiredResult if the handler asked for input it does
// not have, else its result or error.
func (s *Server) inputOrResult(m *modernRequest, req *jsonrpc.Request, round *inputRound, res any, herr error) (any, error) {
	round.mu.Lock()
	pending := round.pending
	round.mu.Unlock()
	if len(pending) > 0 {
		state, err := s.sealState(m, req, round)
		if err != nil {
			return nil, err
		}
		return &InputRequiredResult{ResultType: ResultTypeInputRequired, InputRequests: pending, RequestState: state}, nil
	}
	if errors.Is(herr, ErrInputRequired) {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "handler reported input required without asking for input")
	}
	return res, herr
}

// toolFor returns the tool a tools/call names (name is the raw value of
// its params.name), or nil.
func (s *Server) toolFor(name jsontext.Value) *serverTool {
	n, _, err := stringMember(name, "name")
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.tools.get(n)
	return st
}

// taskSupport returns a tool's task support, forbidden by default.
func taskSupport(t *Tool) TaskSupport {
	if t.Execution != nil && t.Execution.TaskSupport != "" {
		return t.Execution.TaskSupport
	}
	return TaskSupportForbidden
}

// openRound reads the answers and the state a (retried) request carries.
//
// The members were read before dispatch (m.params).
func (s *Server) openRound(ctx context.Context, m *modernRequest, req *jsonrpc.Request) (*inputRound, error) {
	state, hasState, err := stringMember(m.params.requestState, "requestState")
	if err != nil {
		return nil, err
	}
	inputResponses := m.params.inputResponses
	// The round lives in the request; its answers are allocated when there
	// are some.
	round := &m.round
	if hasState {
		body, err := s.openState(m, req, state)
		if err != nil {
			return nil, err
		}
		round.responses = make(map[string]jsontext.Value, len(body.Responses))
		maps.Copy(round.responses, body.Responses)
		round.verified = true
	}
	if len(inputResponses) > 0 {
		if inputResponses.Kind() != '{' {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: inputResponses must be an object, not %s", kindName(inputResponses.Kind()))
		}
		var rs map[string]jsontext.Value
		if err := json.Unmarshal(inputResponses, &rs); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: inputResponses: %v", err)
		}
		if round.responses == nil {
			round.responses = make(map[string]jsontext.Value, len(rs))
		}
		for k, v := range rs {
			// Cloned: v may alias the request's pooled buffer, and a task
			// may outlive the request.
			round.responses[k] = slices.Clone(v)
		}
	}
	return round, nil
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '[':
		return "an array"
	}
	return "an object"
}

// paramsDigest hashes the params that identify a request, leaving out the
// envelope and the MRTR members: the retry of a request must carry the same
// digest as the request.
func paramsDigest(method string, params jsontext.Value) (string, error) {
	members, err := objectMembers(params)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(method))
	kept := members[:0]
	for _, mb := range members {
		switch mb.name {
		case "_meta", "inputResponses", "requestState":
			continue
		}
		kept = append(kept, mb)
	}
	// Members are hashed in name order, values canonicalized (RFC 8785),
	// so that a client's re-encoding does not break the binding.
	sortMembers(kept)
	for _, mb := range kept {
		v := jsontext.Value(append([]byte(nil), mb.value...))
		if err := v.Canonicalize(); err != nil {
			return "", err
		}
		h.Write([]byte{0})
		h.Write([]byte(mb.name))
		h.Write([]byte{0})
		h.Write(v)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}

func sortMembers(ms []member) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].name < ms[j-1].name; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func principalDigest(p string) string {
	sum := sha256.Sum256([]byte("mcp-principal\x00" + p))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// sealState encodes and signs the state of a request that asks for input.
func (s *Server) sealState(m *modernRequest, req *jsonrpc.Request, round *inputRound) (string, error) {
	d, err := paramsDigest(req.Method, req.Params)
	if err != nil {
		return "", jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	round.mu.Lock()
	body := stateBody{
		Version:   1,
		Principal: principalDigest(m.principal),
		Method:    req.Method,
		Digest:    d,
		Expires:   s.now().Add(s.stateTTL()).UnixMilli(),
		Responses: round.responses,
	}
	if body.Responses == nil {
		body.Responses = map[string]jsontext.Value{} // encoded as before: "r":{}
	}
	raw, err := json.Marshal(&body, json.Deterministic(true))
	round.mu.Unlock()
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + s.stateMAC(payload), nil
}

func (s *Server) stateMAC(payload string) string {
	mac := hmac.New(sha256.New, s.stateKey)
	mac.Write([]byte("mcp-request-state-v1\x00"))
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// errBadState is the error for every requestState that fails a check; the
// message says which check, the code is always -32602.
func errBadState(why string) error {
	return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid requestState: %s", why)
}

// openState verifies a requestState and returns its content.
func (s *Server) openState(m *modernRequest, req *jsonrpc.Request, state string) (*stateBody, error) {
	if len(state) > MaxRequestStateBytes {
		return nil, errBadState("too large")
	}
	payload, sig, ok := strings.Cut(state, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.stateMAC(payload))) {
		return nil, errBadState("integrity check failed")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errBadState("malformed")
	}
	var body stateBody
	if err := json.Unmarshal(raw, &body); err != nil || body.Version != 1 {
		return nil, errBadState("malformed")
	}
	if s.now().UnixMilli() > body.Expires {
		return nil, errBadState("expired")
	}
	if body.Principal != principalDigest(m.principal) {
		return nil, errBadState("issued to another caller")
	}
	d, err := paramsDigest(req.Method, req.Params)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	if body.Method != req.Method || body.Digest != d {
		return nil, errBadState("issued for another request")
	}
	return &body, nil
}

func (s *Server) stateTTL() time.Duration {
	if s.opts.RequestStateTTL > 0 {
		return s.opts.RequestStateTTL
	}
	return DefaultRequestStateTTL
}

func (s *Server) now() time.Time {
	if s.opts.now != nil {
		return s.opts.now()
	}
	return time.Now()
}

// requiredCapability returns the client capability an input request
// needs, or nil for an unknown method.
func requiredCapability(method string) *ClientCapabilities {
	switch method {
	case MethodElicitationCreate:
		return &ClientCapabilities{Elicitation: &ElicitationCapabilities{}}
	case MethodSamplingCreateMessage:
		return &ClientCapabilities{Sampling: &SamplingCapabilities{}}
	case MethodRootsList:
		return &ClientCapabilities{Roots: &RootsCapabilities{}}
	}
	return nil
}

func hasCapability(c ClientCapabilities, method string) bool {
	switch method {
	case MethodElicitationCreate:
		return c.Elicitation != nil
	case MethodSamplingCreateMessage:
		return c.Sampling != nil
	case MethodRootsList:
		return c.Roots != nil
	}
	return false
}

// RequestInput asks the client for input, several requests at once, each
// under its key (keys are unique within the request). It returns the
// answers by key, as raw JSON.
//
// In a legacy session it sends each request to the client in turn and
// waits for its answer. In a modern request it returns the answers the
// client's retry carries; when one is missing it records every unanswered
// request and returns ErrInputRequired, which the handler should return.
//
// A request for a capability the client did not declare fails with a
// -32021 (MissingRequiredClientCapability) *jsonrpc.Error; RequestInput
// from a method that cannot ask for input fails with -32603.
func (ss *ServerSession) RequestInput(ctx context.Context, reqs map[string]*InputRequest) (map[string]jsontext.Value, error) {
	caps := ss.ClientCapabilitiesFor(ctx)
	for k, r := range reqs {
		need := requiredCapability(r.Method)
		if need == nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "input request %q: method %q cannot ask the client for input", k, r.Method)
		}
		if !hasCapability(caps, r.Method) {
			return nil, MissingCapabilityError(need, "this request needs the client capability for %s, which the client did not declare", r.Method)
		}
	}
	m := modernFrom(ctx)
	if m == nil {
		return ss.legacyInput(ctx, reqs)
	}
	if m.input == nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "%s cannot ask the client for input", m.method)
	}
	round := m.input
	if m.task != nil {
		// A task waits for the answers (tasks/update); answers of the
		// multi round-trip phase before it count too.
		round.mu.Lock()
		known := maps.Clone(round.responses)
		round.mu.Unlock()
		return m.task.input(ctx, reqs, known)
	}
	round.mu.Lock()
	defer round.mu.Unlock()
	out := make(map[string]jsontext.Value, len(reqs))
	missing := false
	for k := range reqs {
		v, ok := round.responses[k]
		if !ok || v.Kind() == 'n' {
			missing = true
			continue
		}
		out[k] = v
	}
	if !missing {
		return out, nil
	}
	if round.pending == nil {
		round.pending = make(map[string]*InputRequest)
	}
	for k, r := range reqs {
		if _, ok := out[k]; !ok {
			round.pending[k] = r
		}
	}
	return nil, ErrInputRequired
}

// legacyInput sends the input requests as server-to-client requests of a
// legacy session.
func (ss *ServerSession) legacyInput(ctx context.Context, reqs map[string]*InputRequest) (map[string]jsontext.Value, error) {
	out := make(map[string]jsontext.Value, len(reqs))
	for k, r := range reqs {
		var raw jsontext.Value
		if err := ss.request(ctx, r.Method, r.Params, &raw); err != nil {
			return nil, fmt.Errorf("input request %q: %w", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

// inputAnswer asks one input request and decodes its answer into res.
func inputAnswer[T any](ctx context.Context, ss *ServerSession, key string, r *InputRequest, res *T, check func(*T) error) (*T, error) {
	got, err := ss.RequestInput(ctx, map[string]*InputRequest{key: r})
	if err != nil {
		return nil, err
	}
	raw := got[key]
	if raw.Kind() != '{' {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "inputResponses[%q] must be an object, not %s", key, kindName(raw.Kind()))
	}
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "inputResponses[%q] is not a valid %s result: %v", key, r.Method, err)
	}
	if check != nil {
		if err := check(res); err != nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "inputResponses[%q] is not a valid %s result: %v", key, r.Method, err)
		}
	}
	return res, nil
}

// ElicitInput asks the client to elicit information from its user (see
// RequestInput for how legacy sessions and modern requests differ).
func (ss *ServerSession) ElicitInput(ctx context.Context, key string, params *ElicitParams) (*ElicitResult, error) {
	return inputAnswer(ctx, ss, key, &InputRequest{Method: MethodElicitationCreate, Params: params}, new(ElicitResult), func(r *ElicitResult) error {
		switch r.Action {
		case "accept", "decline", "cancel":
			return nil
		}
		return fmt.Errorf("unknown action %q", r.Action)
	})
}

// SampleInput asks the client to sample a message from its model (see
// RequestInput).
func (ss *ServerSession) SampleInput(ctx context.Context, key string, params *CreateMessageParams) (*CreateMessageResult, error) {
	return inputAnswer(ctx, ss, key, &InputRequest{Method: MethodSamplingCreateMessage, Params: params}, new(CreateMessageResult), nil)
}

// ListRootsInput asks the client for its roots (see RequestInput).
func (ss *ServerSession) ListRootsInput(ctx context.Context, key string) (*ListRootsResult, error) {
	return inputAnswer(ctx, ss, key, &InputRequest{Method: MethodRootsList, Params: &ListRootsParams{}}, new(ListRootsResult), func(r *ListRootsResult) error {
		if r.Roots == nil {
			return errors.New("roots is missing")
		}
		return nil
	})
}

// HasVerifiedRequestState reports whether the modern request ctx belongs
// to is a retry that carried a requestState the server verified.
func HasVerifiedRequestState(ctx context.Context) bool {
	m := modernFrom(ctx)
	if m == nil || m.input == nil {
		return false
	}
	m.input.mu.Lock()
	defer m.input.mu.Unlock()
	return m.input.verified
}
