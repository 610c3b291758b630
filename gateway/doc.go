// Package gateway is mcpgate's MCP gateway: one MCP endpoint in front of
// many upstream MCP servers. It merges their tools, resources and prompts
// into one catalogue (with a name prefix per upstream), routes each request
// to the upstream that serves it, and relays what the protocol carries in
// both directions: progress, logging, cancellation, list changes, resource
// updates, sampling, elicitation, roots and tasks.
//
// # One door
//
// Every request and notification a client sends, and every request an
// upstream sends toward a client, passes one admission stage before
// anything is forwarded ([Gateway] handle, admission.go). The stage looks
// the method up in a method table: governed methods have their params
// decoded once and their target resolved, are decided by policy (a
// principal acts only on what it may see), rate limited, and recorded in
// the audit log before they are dispatched; local methods (initialize,
// ping) are answered by the gateway; everything else, including any method
// in no table, is refused and recorded. docs/gateway.md has the tables and
// the path of one request; TestMethodTables and TestMethodCoverage prove
// every method of the schema is governed or refused.
//
// The gateway builds nothing from configuration files or databases: the
// program's wiring, internal/app, opens the store and builds the policy
// engine, audit log, approvals, inventory and authorization server, and
// passes them in [Options].
//
// Upstream sessions are made lazily, one per principal and capability
// profile (what that principal's client declared), and always with the
// gateway's own credentials for the upstream: a caller's token never
// leaves the gateway.
//
// # Files
//
//   - gateway.go: [Gateway], [New], [Gateway.Handler], Start (which returns
//     at once: upstreams come up in the background) and Close; the
//     downstream session record; sending a request upstream (call).
//   - hooks.go: [Hooks], the callbacks the wiring (internal/app) gives the
//     authorization server, inventory and approvals before the gateway
//     exists.
//   - admission.go: the method tables and the admission stage (handle,
//     govern, refuse, handleNotification).
//   - forward.go: the resolve and forward functions of each governed
//     client request.
//   - relay.go: requests and notifications from upstreams toward clients.
//   - modern.go: 2026-07-28 requests through the same admission stage (the
//     request's own downstream record, server/discover, cache hints,
//     approvals as MRTR input requests).
//   - modern_mrtr.go: upstreams' requests toward a modern client as MRTR
//     input requests, the call parked until the client's retry.
//   - modern_passthrough.go: a modern upstream's input_required rounds
//     passed through to a modern client (its own keys; each input request
//     admitted; its requestState wrapped in the gateway's MAC'd state).
//   - modern_upstream_tasks.go: a modern upstream's tasks (Tasks
//     extension) as gateway tasks for modern clients.
//   - modern_upstream_listen.go: the subscriptions/listen stream each
//     modern upstream session keeps open for list changes.
//   - enforce.go: policy decisions, list-time visibility, approvals, the
//     audit append, denial errors.
//   - catalog.go: the merged catalogue per principal, namespacing, routes.
//   - trust.go: tool trust (approved definitions, new tools held, names and
//     descriptions with invisible characters refused).
//   - tasks.go: gateway task ids bound to their owner, the task store.
//   - taskwatch.go: the task watcher, which follows every task created
//     through the gateway to its end (status notifications, else polling
//     tasks/get or tasks/list, one goroutine per upstream session, at most 10,000
//     tasks), records each change (task.status) and carries out cancel
//     requests recorded by `mcpgate tasks cancel`; several tasks of one
//     upstream session share one tasks/list per interval.
//   - taskpolicy.go: policy over tasks (context.task, the limits
//     @max_task_ttl and @max_concurrent_tasks, slots reserved before a
//     task is forwarded) and the pick-up of `mcpgate tasks cancel`
//     requests every 200 ms.
//   - taskapproval.go: tasks held by the gateway while a call waits for
//     approval, then run by the gateway.
//   - taskheld.go: held tasks across a restart: the call kept sealed with
//     the record, held again at start-up, results kept like an upstream
//     task's.
//   - taskresult.go: results of tasks that ended, fetched by the
//     watcher (again, with back-off, when a fetch gets no answer) and
//     kept sealed (AES-256-GCM) with their digest, answered to their
//     owner from the store.
//   - taskresume.go: tasks across a gateway restart: the upstream session
//     state saved with each task, resumed at start-up; tasks the upstream
//     no longer knows end as failed.
//   - upstream.go, stdioenv.go: upstream connections, capability profiles,
//     transports, back-off and the circuit, the environment of stdio
//     upstreams.
//   - upstreamreap.go: upstream sessions ended when idle, and bounded per
//     upstream (server.upstream_session_idle, max_upstream_sessions,
//     max_stdio_sessions).
//   - health.go: bringing upstreams up in the background (supervise),
//     [Gateway.UpstreamStates], readiness and the /healthz and /readyz
//     probes.
//   - reload.go: the upstream set in force (read without a lock, replaced
//     whole), and ApplyUpstreams, which a configuration reload uses to
//     add, remove and replace upstreams without touching the others.
//   - notifylimit.go: the rate of the notifications each upstream may
//     send that come in floods (server.upstream_notification_rate).
//   - overload.go: the bounds on MCP requests in progress, in all and per
//     principal (server.max_inflight), past which requests are refused at
//     once with a retry hint.
//   - metrics.go: the Prometheus metrics (Options.Metrics), read at
//     scrape time where they are state, and /metrics (MetricsHandler).
//   - tracing.go: the span of each client request and its children, W3C
//     trace context from clients and to upstreams (headers and _meta),
//     and the debug request log.
//   - upstream_oauth.go: glue to [github.com/mcpgate/mcpgate/gateway/upstreamauth].
//   - registry.go: the session registry, progress routes, task creations.
//   - replicas.go: sessions on any replica (Options.SharedSessions):
//     adopting a session another replica opened from its record, ending
//     it everywhere, and tasks another replica follows answered from
//     their records.
//   - inventory.go, auth.go, identity.go: the gateway's side of the
//     inventory, the authorization server and the caller's identity.
//   - admin.go: what operators see and do (sessions, upstream sessions,
//     tasks, closing and cancelling).
//   - rawjson.go: typed raw-JSON helpers on internal/jsonraw.
package gateway
