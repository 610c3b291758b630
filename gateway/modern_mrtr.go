package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// Server-to-client requests of upstreams, for modern clients (MRTR).
//
// A 2026-07-28 client has no channel for server-to-client requests: a
// server that needs input answers the call with resultType
// "input_required", and the client retries the call with the answers. An
// upstream that speaks 2025-11-25 instead sends elicitation/create,
// sampling/createMessage or roots/list during the call. The gateway
// bridges the two: it runs a modern client's upstream call detached from
// the client's HTTP request; when the upstream sends a request toward the
// client, that request passes admission exactly as a relayed request
// does for a legacy client (relayRequest: policy on the client-request
// action, the capability check, the audit records), and is then put to
// the client as the inputRequests of an input_required answer, the call
// being parked. The requestState names the parked call; the client's
// retry (a new tools/call, admitted again) carries the answer, which is
// sent to the upstream as its request's result, and the gateway goes on
// waiting for the call's result or its next request.
//
// A parked call belongs to the principal whose call it is, and is found
// only by that principal, for the same method and target; the state is
// MAC-ed with a key of the gateway process (parked calls live in that
// process: another replica or a restarted gateway refuses the state).
// At most maxParkedPerPrincipal calls of one principal are parked at
// once (a call past that gets -32603 at once, and its upstream request an
// error); a call parked for parkTTL without a retry is ended: its
// upstream request is answered with an error, and the state refused.

// Bounds of parked calls.
const (
	// maxParkedPerPrincipal bounds the calls of one principal parked at
	// once, waiting for the client's retry.
	maxParkedPerPrincipal = 32
	// defaultParkTTL is how long a parked call waits for the client's
	// retry (the library's default request state lifetime).
	defaultParkTTL = mcp.DefaultRequestStateTTL
)

// parkStatePrefix marks a requestState that names a parked call.
const parkStatePrefix = "mcpgate-park."

// inputAsk is one request of an upstream put to a modern client.
type inputAsk struct {
	seq    int64 // the call's request count: each round's state differs
	key    string
	method string
	params jsontext.Value
	answer chan jsontext.Value // buffered: the client's answer
}

// parkEvent is what an upstream call in progress produces: a request for
// the client, or its outcome.
type parkEvent struct {
	ask *inputAsk
	res jsontext.Value
	err error
}

// parkedCall is a modern client's upstream call in progress.
type parkedCall struct {
	id, principal, method, target string
	ds                            *downstreamSession // of the first round: whom relayed requests go to
	events                        chan parkEvent
	cancel                        context.CancelFunc // ends the upstream call
	asks                          atomic.Int64       // requests so far, for keys
	changed                       chan struct{}      // a task collector's request came (modern_tasks.go); nil for calls

	// Guarded by parking.mu.
	pending *inputAsk   // the request the client was asked, while parked
	timer   *time.Timer // ends the call when parked too long
}

// parking holds the parked calls of modern clients.
type parking struct {
	mu    sync.Mutex
	byID  map[string]*parkedCall
	count map[string]int // parked calls per principal
	key   []byte         // MACs requestState
	ttl   time.Duration  // 0: defaultParkTTL
	once  sync.Once
}

func (pk *parking) init() {
	pk.once.Do(func() {
		pk.byID = make(map[string]*parkedCall)
		pk.count = make(map[string]int)
		pk.key = make([]byte, 32)
		rand.Read(pk.key)
	})
}

// state returns the requestState naming pc, parked on its request seq.
func (pk *parking) state(pc *parkedCall, seq int64) string {
	n := strconv.FormatInt(seq, 10)
	return parkStatePrefix + pc.id + "." + n + "." + pk.mac(pc, n)
}

func (pk *parking) mac(pc *parkedCall, seq string) string {
	h := hmac.New(sha256.New, pk.key)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s", pc.id, seq, pc.principal, pc.method, pc.target)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// park records pc as waiting for the client's answer to ask. It fails
// when the principal has too many parked calls.
func (pk *parking) park(pc *parkedCall, ask *inputAsk) error {
	pk.init()
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.byID[pc.id] == nil {
		if pk.count[pc.principal] >= maxParkedPerPrincipal {
			return jsonrpc.NewError(jsonrpc.CodeInternalError, "too many calls of this user wait for input (at most %d): answer or abandon one first", maxParkedPerPrincipal)
		}
		pk.byID[pc.id] = pc
		pk.count[pc.principal]++
	}
	pc.pending = ask
	ttl := pk.ttl
	if ttl <= 0 {
		ttl = defaultParkTTL
	}
	if pc.timer != nil {
		pc.timer.Stop()
	}
	pc.timer = time.AfterFunc(ttl, func() { pk.expire(pc) })
	return nil
}

// expire ends a call parked for too long: its upstream request gets an
// error (the call's context ends) and its state is refused from now on.
func (pk *parking) expire(pc *parkedCall) {
	pk.mu.Lock()
	if pk.byID[pc.id] == pc && pc.pending != nil {
		pk.removeLocked(pc)
	} else {
		pc = nil // taken by a retry meanwhile
	}
	pk.mu.Unlock()
	if pc != nil {
		pc.cancel()
	}
}

func (pk *parking) removeLocked(pc *parkedCall) {
	delete(pk.byID, pc.id)
	if pk.count[pc.principal]--; pk.count[pc.principal] <= 0 {
		delete(pk.count, pc.principal)
	}
	if pc.timer != nil {
		pc.timer.Stop()
	}
}

// take returns the parked call a requestState names, for principal's
// call of method on target, and marks it no longer parked (a retry is
// serving it); nil if there is none.
func (pk *parking) take(state, principal, method, target string) (*parkedCall, *inputAsk) {
	pk.init()
	rest, ok := strings.CutPrefix(state, parkStatePrefix)
	if !ok {
		return nil, nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return nil, nil
	}
	id, seq, mac := parts[0], parts[1], parts[2]
	pk.mu.Lock()
	defer pk.mu.Unlock()
	pc := pk.byID[id]
	if pc == nil || pc.pending == nil || strconv.FormatInt(pc.pending.seq, 10) != seq ||
		pc.principal != principal || pc.method != method || pc.target != target ||
		!hmac.Equal([]byte(mac), []byte(pk.mac(pc, seq))) {
		return nil, nil
	}
	ask := pc.pending
	pc.pending = nil
	pc.timer.Stop()
	return pc, ask
}

// done forgets pc (its call ended, or its client went away).
func (pk *parking) done(pc *parkedCall) {
	pk.init()
	pk.mu.Lock()
	if pk.byID[pc.id] == pc {
		pk.removeLocked(pc)
	}
	pk.mu.Unlock()
}

type parkedCallKey struct{}

// parkedOf returns the modern call a relayed request belongs to (from the
// downstream context relayTarget returns), or nil.
func parkedOf(ctx context.Context) *parkedCall {
	pc, _ := ctx.Value(parkedCallKey{}).(*parkedCall)
	return pc
}

// modernCall sends a modern client's request upstream (as Gateway.call
// does), bridging the upstream's requests toward the client to MRTR. The
// client's MRTR members of a retry are in c.mrtr.
func (g *Gateway) modernCall(ctx context.Context, c *call, cs *mcp.ClientSession, u *upstream, params jsontext.Value) (any, error) {
	if isModernSession(cs) {
		// Both sides speak 2026-07-28: rounds pass through
		// (modern_passthrough.go).
		res, err := g.passthroughCall(ctx, c, cs, u, params)
		if err != nil {
			return nil, err
		}
		if stringOf(res, "resultType") == mcp.ResultTypeTask {
			// A task the gateway did not ask for (the tool's listed
			// taskSupport forbids it): still the caller's, under the
			// gateway's id (modern_upstream_tasks.go).
			return g.mapModernTask(ctx, c, u, res)
		}
		return res, nil
	}
	switch {
	case c.mrtr.state == "", strings.HasPrefix(c.mrtr.state, approvalStatePrefix):
		// A first round, or the retry after an approval (which the
		// admission stage checked with the approval service).
	case !strings.HasPrefix(c.mrtr.state, parkStatePrefix):
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid requestState: not one the gateway issued")
	default:
		pc, ask := g.parking.take(c.mrtr.state, c.ds.principal, c.method, c.name)
		if pc == nil {
			return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid requestState: it names no call of this user waiting for input (it may have expired)")
		}
		answer, ok := c.mrtr.responses[ask.key]
		if !ok || answer.Kind() == 'n' {
			// Asked again.
			return g.parkAgain(pc, ask)
		}
		ask.answer <- answer
		return g.await(ctx, pc)
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pc := &parkedCall{id: newID(), principal: c.ds.principal, method: c.method, target: c.name, ds: c.ds,
		events: make(chan parkEvent, 8), cancel: cancel}
	bctx = context.WithValue(bctx, parkedCallKey{}, pc)
	go func() {
		res, err := g.call(bctx, c.ds.ss, cs, u, c.method, params)
		pc.events <- parkEvent{res: res, err: err}
		cancel()
	}()
	return g.await(ctx, pc)
}

// await waits for the upstream call's next event: its outcome, or a
// request for the client (the call is then parked). If the client goes
// away meanwhile, the call is cancelled.
func (g *Gateway) await(ctx context.Context, pc *parkedCall) (any, error) {
	select {
	case ev := <-pc.events:
		if ev.ask == nil {
			g.parking.done(pc)
			return ev.res, ev.err
		}
		return g.parkAgain(pc, ev.ask)
	case <-ctx.Done():
		g.parking.done(pc)
		pc.cancel()
		return nil, ctx.Err()
	}
}

// parkAgain parks pc on ask and answers the client input_required.
func (g *Gateway) parkAgain(pc *parkedCall, ask *inputAsk) (any, error) {
	if err := g.parking.park(pc, ask); err != nil {
		pc.cancel()
		return nil, err
	}
	return &mcp.InputRequiredResult{
		ResultType:    mcp.ResultTypeInputRequired,
		InputRequests: map[string]*mcp.InputRequest{ask.key: {Method: ask.method, Params: ask.params}},
		RequestState:  g.parking.state(pc, ask.seq),
	}, nil
}

// askClient puts an upstream's request to the modern client whose call pc
// is, and waits for the answer the client's retry brings, until the
// upstream cancels its request (ctx) or the parked call ends (expired, or
// the client went away).
func (pc *parkedCall) askClient(ctx context.Context, method string, params jsontext.Value) (jsontext.Value, error) {
	seq := pc.asks.Add(1)
	ask := &inputAsk{seq: seq, key: fmt.Sprintf("%s#%d", method, seq), method: method, params: params, answer: make(chan jsontext.Value, 1)}
	select {
	case pc.events <- parkEvent{ask: ask}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case a := <-ask.answer:
		return a, nil
	case <-ctx.Done():
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, "the client did not answer %s in time, or went away", method)
	}
}

// mrtrRetry are the MRTR members of a modern request's params.
type mrtrRetry struct {
	state     string
	responses map[string]jsontext.Value
}

// readMRTR reads requestState and inputResponses from a modern request's
// params.
func readMRTR(p *jsonraw.Object) (mrtrRetry, error) {
	var r mrtrRetry
	state, _, err := p.String("requestState")
	if err != nil {
		return r, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: requestState: %v", err)
	}
	if len(state) > mcp.MaxRequestStateBytes {
		return r, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: requestState is longer than %d bytes", mcp.MaxRequestStateBytes)
	}
	r.state = state
	if raw, ok := p.Get("inputResponses"); ok {
		if raw.Kind() != '{' {
			return r, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: inputResponses must be an object")
		}
		if err := json.Unmarshal(raw, &r.responses); err != nil {
			return r, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: inputResponses: %v", err)
		}
	}
	return r, nil
}
