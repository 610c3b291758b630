package mcp

import (
	"context"
	"errors"
)

// Passthrough of interim results, for relays (the gateway).
//
// A relay that fronts a 2026-07-28 server for 2026-07-28 clients wants
// the server's interim results as they are: an input_required result with
// the server's own inputRequests keys and requestState, which the relay
// puts to its client, and a CreateTaskResult, which it maps onto its own
// task ids. WithRawInterimResults asks ClientSession for exactly that.

type rawInterimKey struct{}

// WithRawInterimResults returns a context that makes a modern request
// sent with it (CallRaw, or any typed call) return an input_required
// result or a task's CreateTaskResult as the server sent it, instead of
// answering the input requests with the client's handlers and retrying,
// or waiting for the task. The caller answers the input requests itself,
// by sending the request again with inputResponses and the requestState
// in its params; ClientSession adds only the envelope. Legacy sessions
// ignore it.
func WithRawInterimResults(ctx context.Context) context.Context {
	return context.WithValue(ctx, rawInterimKey{}, true)
}

// rawInterim reports whether ctx asks for interim results as they are.
func rawInterim(ctx context.Context) bool {
	v, _ := ctx.Value(rawInterimKey{}).(bool)
	return v
}

// Listen sends subscriptions/listen on a modern session, opting in to
// the notifications filter names, and returns when the stream ends: ctx
// is done (the usual way: the error is then ctx's), the server ended the
// stream, or the session ended. The notifications that arrive on it
// (notifications/subscriptions/acknowledged first, then the list changes
// and resource updates, each with the subscription id in _meta) go to
// ClientOptions.NotificationHandler like any other. ClientOptions.
// RequestTimeout does not apply. A legacy session fails at once.
func (cs *ClientSession) Listen(ctx context.Context, filter SubscriptionFilter) error {
	m := cs.modernState()
	if m == nil {
		return errors.New("mcp: subscriptions/listen needs a 2026-07-28 session")
	}
	raw, err := marshalParams(&SubscriptionsListenParams{Notifications: filter})
	if err != nil {
		return err
	}
	_, err = cs.modernCall(ctx, m, MethodSubscriptionsListen, raw)
	if err == nil {
		return errors.New("mcp: the server ended the subscriptions/listen stream")
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
