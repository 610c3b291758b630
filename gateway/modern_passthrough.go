package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
)

// Multi round-trip requests passed through: a modern client in front of
// a modern upstream.
//
// When both sides speak 2026-07-28 the gateway does not turn the
// upstream's input_required result into parked server-to-client requests
// (modern_mrtr.go): it hands the result to the client as it came, with
// the upstream's own inputRequests keys and structure (several requests
// in one round, a partial answer asked again), and sends the client's
// retry upstream with its inputResponses. Each round is a request of its
// own and passes the admission stage as one (policy, limits, the audit
// records of the call); each input request of a round passes it too,
// exactly as a relayed elicitation, sampling or roots request does
// (action = the method, resource kind client-request, the upstream), and
// is refused when the client did not declare what it needs.
//
// The upstream's requestState is never shown to the client as is, nor
// trusted by the gateway: the client gets the gateway's own state
// (passStatePrefix), MAC'd with the key of parked calls and binding the
// upstream's state to the principal, the method, the target as the
// client names it, the upstream, a digest of the params and an expiry
// (defaultParkTTL). A retry whose state does not verify, or that another
// principal sends, is refused with -32602 before anything reaches the
// upstream. Roots requests of an upstream whose roots setting is fixed
// are answered by the gateway (the answers are carried in the state).

// passStatePrefix starts a requestState that wraps a modern upstream's.
const passStatePrefix = "mcpgate-mrtr."

// maxUpstreamStateBytes bounds the requestState a modern upstream may
// hand out through the gateway (256 KiB): the gateway's state wraps it
// and must stay under mcp.MaxRequestStateBytes.
const maxUpstreamStateBytes = 256 << 10

// maxInputRequests bounds the input requests of one round of a modern
// upstream (100): each passes the admission stage and is recorded.
const maxInputRequests = 100

// passState is what the gateway's requestState holds.
type passState struct {
	Principal string                    `json:"p"` // SHA-256 of the principal, hex
	Method    string                    `json:"m"`
	Target    string                    `json:"t"`
	Upstream  string                    `json:"u"`
	Params    string                    `json:"d"` // paramsDigest
	Expires   int64                     `json:"e"` // unix milliseconds
	State     *string                   `json:"s,omitempty"`
	Answers   map[string]jsontext.Value `json:"a,omitempty"` // answered by the gateway
}

// isModernSession reports whether cs speaks 2026-07-28.
func isModernSession(cs *mcp.ClientSession) bool { return cs != nil && cs.DiscoverResult() != nil }

// principalHash is the digest of a principal kept in states.
func principalHash(p string) string {
	h := sha256.Sum256([]byte(p))
	return hex.EncodeToString(h[:])
}

// paramsDigest is a digest of a request's params (as the gateway forwards
// them, without the MRTR members and the envelope) that does not depend on
// the order of members.
func paramsDigest(params jsontext.Value) string {
	var v any
	if len(params) > 0 {
		if err := json.Unmarshal(params, &v); err != nil {
			v = string(params)
		}
	}
	b, _ := json.Marshal(v, json.Deterministic(true))
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// sealPass returns the gateway's requestState holding st.
func (pk *parking) sealPass(st *passState) (string, error) {
	pk.init()
	b, err := json.Marshal(st, json.Deterministic(true))
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return passStatePrefix + payload + "." + pk.passMAC(payload), nil
}

func (pk *parking) passMAC(payload string) string {
	h := hmac.New(sha256.New, pk.key)
	h.Write([]byte(passStatePrefix))
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// openPass verifies a requestState the gateway issued for c's call to u
// and returns what it holds.
func (pk *parking) openPass(state string, c *call, u *upstream, params jsontext.Value, now time.Time) (*passState, error) {
	pk.init()
	bad := func(why string) error {
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid requestState: %s", why)
	}
	rest, _ := strings.CutPrefix(state, passStatePrefix)
	payload, mac, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(pk.passMAC(payload))) {
		return nil, bad("it does not verify (altered, or not issued by this gateway process)")
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, bad("it does not decode")
	}
	var st passState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, bad("it does not decode")
	}
	switch {
	case st.Principal != principalHash(c.ds.principal):
		return nil, bad("it was issued to another user")
	case st.Method != c.method || st.Target != c.name || st.Upstream != u.cfg.Name:
		return nil, bad("it was issued for another request")
	case st.Params != paramsDigest(params):
		return nil, bad("it was issued for other params")
	case now.UnixMilli() > st.Expires:
		return nil, bad("it expired")
	}
	return &st, nil
}

// passthroughCall sends a modern client's request to a modern upstream,
// passing input_required rounds through (see above). A task the upstream
// makes of the call comes back as the upstream's CreateTaskResult, for
// the caller to map.
func (g *Gateway) passthroughCall(ctx context.Context, c *call, cs *mcp.ClientSession, u *upstream, params jsontext.Value) (jsontext.Value, error) {
	var upState *string
	answers := map[string]jsontext.Value{}
	switch s := c.mrtr.state; {
	case s == "", strings.HasPrefix(s, approvalStatePrefix):
		// A first round, or the retry after an approval.
	case strings.HasPrefix(s, passStatePrefix):
		st, err := g.parking.openPass(s, c, u, params, time.Now())
		if err != nil {
			return nil, err
		}
		upState = st.State
		for k, v := range st.Answers {
			answers[k] = v
		}
	default:
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid requestState: not one the gateway issued")
	}
	for k, v := range c.mrtr.responses {
		if k == approvalInputKey {
			continue // the gateway's own, answered by the approval pages
		}
		answers[k] = v
	}
	ctx = mcp.WithRawInterimResults(ctx)
	for range mcp.DefaultMaxInputRounds {
		p, err := withMRTR(params, answers, upState)
		if err != nil {
			return nil, err
		}
		res, err := g.call(ctx, c.ds.ss, cs, u, c.method, p)
		if err != nil || stringOf(res, "resultType") != mcp.ResultTypeInputRequired {
			return res, err
		}
		reqs, next, err := upstreamInputRequests(u, res)
		if err != nil {
			return nil, err
		}
		own, err := g.admitInputs(ctx, c, u, reqs)
		if err != nil {
			return nil, err
		}
		answers, upState = own, next
		if len(own) < len(reqs) || len(reqs) == 0 {
			return g.passInputRequired(c, u, params, res, own, next)
		}
		// The gateway answered every request itself: next round.
	}
	return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s asked for input more than %d times", u.cfg.Name, mcp.DefaultMaxInputRounds)
}

// withMRTR returns params with inputResponses (if any) and requestState
// (if any) set.
func withMRTR(params jsontext.Value, answers map[string]jsontext.Value, state *string) (jsontext.Value, error) {
	p, err := jsonraw.Parse(params)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err)
	}
	if len(answers) > 0 {
		b, err := json.Marshal(answers, json.Deterministic(true))
		if err != nil {
			return nil, err
		}
		if err := p.Set("inputResponses", b); err != nil {
			return nil, err
		}
	}
	if state != nil {
		if err := p.SetString("requestState", *state); err != nil {
			return nil, err
		}
	}
	return p.Bytes(), nil
}

// upstreamInputRequests reads the inputRequests (kept raw) and the
// requestState of a modern upstream's input_required result.
func upstreamInputRequests(u *upstream, res jsontext.Value) (map[string]jsontext.Value, *string, error) {
	var head struct {
		InputRequests map[string]jsontext.Value `json:"inputRequests"`
		RequestState  *string                   `json:"requestState"`
	}
	if err := json.Unmarshal(res, &head); err != nil {
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s sent an invalid input_required result: %v", u.cfg.Name, err)
	}
	if len(head.InputRequests) > maxInputRequests {
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s asked for %d inputs in one round (the gateway relays at most %d)", u.cfg.Name, len(head.InputRequests), maxInputRequests)
	}
	if head.RequestState != nil && len(*head.RequestState) > maxUpstreamStateBytes {
		return nil, nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s sent a requestState longer than %d bytes", u.cfg.Name, maxUpstreamStateBytes)
	}
	return head.InputRequests, head.RequestState, nil
}

// admitInputs passes each input request of an upstream's round through
// the admission stage, as relayRequest does for a legacy upstream's
// requests, in key order. It returns the answers the gateway gives itself
// (roots of an upstream whose roots setting is fixed); the others go to
// the client. Any refusal fails the call.
func (g *Gateway) admitInputs(ctx context.Context, c *call, u *upstream, reqs map[string]jsontext.Value) (map[string]jsontext.Value, error) {
	own := map[string]jsontext.Value{}
	keys := make([]string, 0, len(reqs))
	for k := range reqs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		r := reqs[key]
		method, params := stringOf(r, "method"), valueOf(r, "params")
		ic := &call{ds: c.ds, method: method, params: params, args: params, up: u,
			res: policy.Resource{Kind: policy.KindClientRequest, Upstream: u.cfg.Name, Name: method}}
		switch method {
		case mcp.MethodElicitationCreate, mcp.MethodSamplingCreateMessage:
		case mcp.MethodRootsList:
			switch u.rootsMode() {
			case config.RootsFixed:
				out, err := g.govern(ctx, ic, func() (any, error) { return u.fixedRoots(), nil })
				if err != nil {
					return nil, err
				}
				b, err := json.Marshal(out)
				if err != nil {
					return nil, err
				}
				own[key] = b
				continue
			case config.RootsRelay:
			default:
				return nil, g.refuse(ctx, ic, outcomeRefused, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "roots are not offered to upstream %s (its roots setting is none)", u.cfg.Name))
			}
		default:
			return nil, g.refuse(ctx, ic, outcomeRefused, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "input request %q of upstream %s: method %q is not relayed by the gateway", key, u.cfg.Name, method))
		}
		if params.Kind() != '{' {
			return nil, g.refuse(ctx, ic, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInternalError, "input request %q of upstream %s has no params object", key, u.cfg.Name))
		}
		var err error
		if ic.p, err = jsonraw.Parse(params); err != nil {
			return nil, g.refuse(ctx, ic, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInternalError, "input request %q of upstream %s: %v", key, u.cfg.Name, err))
		}
		if err := clientCan(c.ds, method, params); err != nil {
			return nil, g.refuse(ctx, ic, outcomeRefused, err)
		}
		if _, err := g.govern(ctx, ic, func() (any, error) { return nil, nil }); err != nil {
			return nil, err
		}
	}
	return own, nil
}

// passInputRequired is the upstream's input_required result for the
// client: the input requests the gateway did not answer, unchanged, and
// the gateway's requestState in place of the upstream's.
func (g *Gateway) passInputRequired(c *call, u *upstream, params, res jsontext.Value, own map[string]jsontext.Value, upState *string) (jsontext.Value, error) {
	o, err := jsonraw.Parse(res)
	if err != nil {
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "upstream %s sent an invalid input_required result: %v", u.cfg.Name, err)
	}
	if len(own) > 0 {
		reqs, err := jsonraw.Parse(valueOf(res, "inputRequests"))
		if err != nil {
			return nil, err
		}
		for k := range own {
			reqs.Delete(k)
		}
		if err := o.Set("inputRequests", reqs.Bytes()); err != nil {
			return nil, err
		}
	}
	ttl := g.parking.ttl
	if ttl <= 0 {
		ttl = defaultParkTTL
	}
	st := &passState{Principal: principalHash(c.ds.principal), Method: c.method, Target: c.name, Upstream: u.cfg.Name,
		Params: paramsDigest(params), Expires: time.Now().Add(ttl).UnixMilli(), State: upState, Answers: own}
	state, err := g.parking.sealPass(st)
	if err != nil {
		return nil, err
	}
	if err := o.SetString("requestState", state); err != nil {
		return nil, err
	}
	return o.Bytes(), nil
}
