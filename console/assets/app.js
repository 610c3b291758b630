// mcpgate console: one page, plain JavaScript, no dependencies. Every
// value from the API is put in the page as text (never as HTML). The
// session's CSRF token (from /api/me) is sent with every request that
// changes something.
"use strict";

const base = location.pathname.replace(/[^/]*$/, ""); // "/console/"
let me = null;

// el makes an element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "none"))));
}

function when(t) {
  if (!t || t.startsWith("0001-")) return "-";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function short(s, n) { n = n || 12; return s && s.length > n ? s.slice(0, n) + "…" : (s || "-"); }

class APIError extends Error {
  constructor(status, body) { super(body && body.error ? body.error : "HTTP " + status); this.status = status; this.body = body; }
}

// api calls the console's JSON API.
async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    opts.headers["X-CSRF-Token"] = me ? me.csrf_token : "";
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  }
  const res = await fetch(base + "api/" + path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401 && data && data.sign_in) { location.assign(data.sign_in); throw new APIError(401, data); }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

function flash(msg, isError) {
  const f = document.getElementById("flash");
  f.textContent = msg;
  f.className = isError ? "error" : "";
  f.hidden = !msg;
}

function showError(e) { flash((e.status ? "Refused (" + e.status + "): " : "Error: ") + e.message, true); }

function main(...kids) {
  const m = document.getElementById("main");
  m.replaceChildren(...kids.flat());
}

// confirmBox shows an in-page confirmation with an optional reason
// field; onYes receives the reason.
function confirmBox(text, yesLabel, onYes, withReason) {
  const reason = withReason ? el("input", { type: "text", name: "reason", placeholder: "reason (recorded)", size: 40 }) : null;
  const box = el("div", { class: "confirm", role: "alertdialog" },
    el("p", {}, text),
    reason ? el("p", {}, reason) : null,
    el("button", { class: "danger", type: "button", "data-confirm": "yes", onclick: async () => { box.remove(); await onYes(reason ? reason.value : ""); } }, yesLabel),
    " ",
    el("button", { type: "button", onclick: () => box.remove() }, "Cancel"));
  return box;
}

function stateSpan(s) { return el("span", { class: "state-" + s }, s); }

// ---- Overview ----
async function overview() {
  const o = await api("GET", "overview");
  const up = table(["Upstream", "Transport", "State", "Since", "Tools", "Last error"],
    o.upstreams.map((u) => el("tr", {}, el("td", {}, u.name), el("td", {}, u.transport || "-"), el("td", {}, stateSpan(u.state)),
      el("td", {}, u.since || "-"), el("td", { class: "num" }, u.tools), el("td", {}, u.error || ""))));
  const sessions = table(["Session", "Principal", "Client", "Transport", "Since"],
    o.sessions.map((s) => el("tr", {}, el("td", { class: "mono" }, short(s.ID, 16)), el("td", {}, s.Principal), el("td", {}, short(s.ClientID, 40)), el("td", {}, s.Transport || "-"), el("td", {}, when(s.Created)))));
  const pm = o.per_minute || [];
  const calls = pm.reduce((a, m) => a + m.calls, 0), denials = pm.reduce((a, m) => a + m.denials, 0);
  const pending = table(["Requested", "Principal", "Tool", "Expires"],
    o.pending_approvals.map((a) => el("tr", {}, el("td", {}, el("a", { href: "#approvals" }, when(a.CreatedAt))), el("td", {}, a.Request.Principal), el("td", {}, a.Request.Tool), el("td", {}, when(a.ExpiresAt)))));
  const drift = table(["Kind", "Id", "State", "Detail"],
    o.drift.map((d) => el("tr", {}, el("td", {}, d.kind), el("td", { class: "mono" }, d.id), el("td", { class: "warnc" }, d.state), el("td", {}, d.detail || ""))));
  main(el("h1", {}, "Overview"),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("h2", {}, "Tool calls, last 30 minutes"), el("div", { class: "big", id: "calls-total" }, calls),
        el("div", {}, el("span", { class: "bad" }, denials), " denied · ", o.sessions.length, " open sessions · ", o.tasks, " tasks"), chart(pm)),
      el("div", { class: "card" }, el("h2", {}, "Pending approvals"), el("div", { class: "big" }, o.pending_approvals.length), pending),
      el("div", { class: "card" }, el("h2", {}, "Drift alerts"), el("div", { class: "big" }, o.drift.length), drift)),
    el("h2", {}, "Upstreams"), up,
    el("h2", {}, "Sessions"), sessions,
    el("p", { class: "muted" }, "Policy version ", o.policy_version || "(no policies)", " · as of ", when(o.time)));
}

// chart draws calls (blue) and denials (red) per minute as an SVG.
function chart(pm) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 300, h = 60, n = pm.length || 1, bw = w / n;
  const max = Math.max(1, ...pm.map((m) => m.calls + m.denials));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "calls and denials per minute");
  pm.forEach((m, i) => {
    const ch = (m.calls / max) * h, dh = (m.denials / max) * h;
    for (const [cls, y, hh] of [["calls", h - ch, ch], ["denials", h - ch - dh, dh]]) {
      if (hh <= 0) continue;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", cls); r.setAttribute("x", i * bw + 0.5); r.setAttribute("y", y);
      r.setAttribute("width", Math.max(1, bw - 1)); r.setAttribute("height", hh);
      const t = document.createElementNS(ns, "title");
      t.textContent = when(m.minute) + ": " + m.calls + " calls, " + m.denials + " denied";
      r.append(t);
      svg.append(r);
    }
  });
  return svg;
}

// ---- Inventory ----
const invKinds = ["users", "clients", "sessions", "grants", "tasks", "upstreams", "revocations"];

async function inventory(params) {
  const kind = invKinds.includes(params.get("kind")) ? params.get("kind") : "users";
  const g = await api("GET", "inventory");
  const tabs = el("div", { class: "tabs" }, invKinds.map((k) =>
    el("button", { type: "button", class: k === kind ? "active" : "", onclick: () => { location.hash = "inventory?kind=" + k; } }, k)));
  const pathBox = el("div", { id: "path" });
  const showPath = async (k, id) => {
    try {
      const n = await api("GET", "inventory/path?kind=" + encodeURIComponent(k) + "&id=" + encodeURIComponent(id));
      pathBox.replaceChildren(el("h2", {}, "Path through ", k, " ", id), el("div", { class: "path", "data-path": k + ":" + id }, pathNode(n)));
      pathBox.scrollIntoView();
    } catch (e) { showError(e); }
  };
  const act = (what, k, id, cell) => {
    const verb = what === "revoke" ? "Revoke" : "Reinstate";
    cell.append(confirmBox(verb + " " + k + " " + id + "? " + (what === "revoke" ? "Its tokens are revoked and its sessions and tasks end now." : "It may obtain new tokens again."),
      "Yes, " + verb.toLowerCase() + " " + id, async (reason) => {
        try {
          const r = await api("POST", what, { kind: k, id: id, reason: reason || undefined });
          flash(what === "revoke" ? "Revoked " + k + " " + id + ". " + (r.summary || "") : "Reinstated " + k + " " + id + ".");
          route();
        } catch (e) { showError(e); }
      }, what === "revoke"));
  };
  const actions = (k, id, revoked, walk) => {
    const cell = el("td", { class: "actions" });
    if (walk) cell.append(el("button", { type: "button", "data-path-of": id, onclick: () => showPath(walk, id) }, "Path"), " ");
    if (k) cell.append(revoked
      ? el("button", { type: "button", "data-reinstate": id, onclick: () => act("reinstate", k, id, cell) }, "Reinstate")
      : el("button", { type: "button", class: "danger", "data-revoke": id, onclick: () => act("revoke", k, id, cell) }, "Revoke"));
    return cell;
  };
  let body;
  switch (kind) {
    case "users":
      body = table(["User", "Local", "Identity provider", "Created", "Status", ""], g.Users.map((u) => el("tr", {},
        el("td", {}, u.Name), el("td", {}, u.Local ? "yes" : "no"), el("td", {}, u.IdP || "-"), el("td", {}, when(u.CreatedAt)),
        el("td", { class: u.Revoked ? "bad" : "" }, u.Revoked ? "REVOKED" : "active"), actions("user", u.Name, u.Revoked, "user"))));
      break;
    case "clients":
      body = table(["Client", "Name", "Registration", "Redirect hosts", "Last seen", "Status", ""], g.Clients.map((c) => el("tr", {},
        el("td", { class: "mono" }, c.ID), el("td", {}, c.Name || "-"), el("td", {}, c.RegistrationMethod || "-"),
        el("td", {}, (c.RedirectHosts || []).join(", ") || "-"), el("td", {}, when(c.LastSeen)),
        el("td", { class: c.Revoked ? "bad" : (c.Flagged || c.Admission === "pending" ? "warnc" : "") }, c.Revoked ? "REVOKED" : c.Admission === "pending" ? "pending admission" : c.Admission === "refused" ? "refused" : c.Flagged ? "changed" : "approved"),
        actions("client", c.ID, c.Revoked, "client"))));
      break;
    case "sessions":
      body = table(["Session", "Principal", "Client", "Grant", "Transport", "From", "Since", ""], g.Sessions.map((s) => el("tr", {},
        el("td", { class: "mono" }, short(s.ID, 16)), el("td", {}, s.Principal), el("td", {}, short(s.ClientID, 40)), el("td", { class: "mono" }, short(s.Grant)),
        el("td", {}, s.Transport || "-"), el("td", {}, s.SourceAddr || "-"), el("td", {}, when(s.Created)), actions(null, s.ID, false, "session"))));
      break;
    case "grants":
      body = table(["Grant", "User", "Client", "Scopes", "Expires", "Status", ""], g.Grants.map((gr) => el("tr", {},
        el("td", { class: "mono" }, short(gr.ID, 16)), el("td", {}, gr.User), el("td", {}, short(gr.Client, 40)), el("td", {}, (gr.Scopes || []).join(" ")),
        el("td", {}, when(gr.ExpiresAt)), el("td", { class: gr.Revoked ? "bad" : "" }, gr.Revoked ? "REVOKED" : "live"), actions("grant", gr.ID, gr.Revoked, null))));
      break;
    case "tasks":
      body = table(["Task", "Owner", "Upstream", "Tool", "Status", "Created", "Expires"], g.Tasks.map((t) => el("tr", {},
        el("td", { class: "mono" }, short(t.ID, 16)), el("td", {}, t.Owner), el("td", {}, t.Upstream), el("td", {}, t.Tool || "-"),
        el("td", {}, t.Status), el("td", {}, when(t.Created)), el("td", {}, when(t.Expires)))));
      break;
    case "upstreams":
      body = el("div", {}, g.Upstreams.map((u) => el("div", {},
        el("h2", {}, u.Name, " ", el("span", { class: "muted" }, u.Transport || ""), " ", stateSpan(u.State ? u.State.State : "unknown"), " ",
          el("button", { type: "button", onclick: () => showPath("upstream", u.Name) }, "Path")),
        table(["Tool", "State", "Digest", "Approved by", ""], (u.Tools || []).map((t) => el("tr", {},
          el("td", {}, t.Name), el("td", { class: t.State === "approved" ? "" : "warnc" }, t.State), el("td", { class: "mono" }, short(t.Digest)),
          el("td", {}, t.ApprovedBy || "-"), actions(null, u.Name + "/" + t.Name, false, "tool")))))));
      break;
    case "revocations":
      body = table(["Kind", "Id", "By", "At", "Reason", ""], (g.Revocations || []).map((r) => el("tr", {},
        el("td", {}, r.Kind), el("td", { class: "mono" }, r.ID), el("td", {}, r.By || "-"), el("td", {}, when(r.At || r.CreatedAt)),
        el("td", {}, r.Reason || ""), actions(r.Kind, r.ID, true, null))));
      break;
  }
  main(el("h1", {}, "Inventory"), tabs, body, pathBox);
}

// pathNode draws one step of a path and what it leads to, as nested boxes.
function pathNode(n) {
  return el("div", { class: "node kind-" + n.Kind, "data-kind": n.Kind, "data-id": n.ID },
    el("div", {}, el("span", { class: "k" }, n.Kind), " ", el("span", { class: "id" }, n.ID)),
    n.Summary ? el("div", { class: "sum" }, n.Summary) : null,
    (n.Children || []).map(pathNode));
}

// ---- Audit ----
async function auditPage(params) {
  const f = el("form", { class: "filters", id: "audit-filters" },
    ["principal", "tool", "action"].map((n) => el("label", {}, n, el("input", { name: n, value: params.get(n) || "", size: 16 }))),
    el("label", {}, "decision", el("select", { name: "decision" }, ["", "allow", "deny", "approval_required"].map((d) =>
      el("option", { value: d, selected: params.get("decision") === d }, d || "any")))),
    el("label", {}, "since (UTC)", el("input", { name: "since", type: "datetime-local", value: params.get("since") || "" })),
    el("label", {}, "until (UTC)", el("input", { name: "until", type: "datetime-local", value: params.get("until") || "" })),
    el("label", {}, "limit", el("input", { name: "limit", type: "number", min: 1, max: 1000, value: params.get("limit") || "100", size: 5 })),
    el("button", { type: "submit", class: "primary" }, "Search"));
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(f)) if (v) q.set(k, v);
    location.hash = "audit?" + q.toString();
  });
  const verifyOut = el("div", { id: "verify-result" });
  const verify = el("button", { type: "button", id: "verify", onclick: async () => {
    verifyOut.replaceChildren(el("p", { class: "muted" }, "Verifying…"));
    try {
      const v = await api("POST", "audit/verify");
      verifyOut.replaceChildren(el("div", { class: "result " + (v.ok ? "good" : "bad") }, el("strong", {}, v.ok ? "Chain verified. " : "Verification FAILED. "), v.message,
        el("div", { class: "muted" }, v.signatures_checked ? "Checkpoint signatures checked with key " + v.key_id + "." : "Checkpoint signatures not checked (no key).")));
    } catch (e) { showError(e); verifyOut.replaceChildren(); }
  } }, "Verify the chain");
  const q = new URLSearchParams();
  for (const k of ["principal", "tool", "action", "decision", "limit"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["since", "until"]) if (params.get(k)) q.set(k, new Date(params.get(k) + "Z").toISOString().replace(/\.\d+Z$/, "Z"));
  const res = await api("GET", "audit?" + q.toString());
  const rows = res.records.map((r) => el("tr", { "data-seq": r.seq },
    el("td", { class: "num" }, r.seq), el("td", {}, when(r.time)),
    el("td", {}, [r.user, r.client].filter(Boolean).join(" / ") || "-"),
    el("td", {}, r.action, r.phase ? " (" + r.phase + ")" : ""),
    el("td", {}, [r.upstream, r.target].filter(Boolean).join(": ") || "-"),
    el("td", { class: r.decision ? "decision-" + r.decision : "" }, r.decision || "-"),
    el("td", { class: "provenance" }, r.policy_version ? el("span", { class: "mono", title: r.policy_version }, "v " + short(r.policy_version, 10)) : "-",
      (r.policies || []).length ? el("div", {}, "by ", r.policies.join(", ")) : null),
    el("td", {}, r.outcome || "-"), el("td", {}, r.error || "")));
  main(el("h1", {}, "Audit log"), f, el("p", {}, verify), verifyOut,
    el("p", { class: "muted" }, res.records.length + " records shown, newest first; " + res.scanned + " read (records " + res.first_seq + "–" + res.last_seq + ")" + (res.truncated ? "; older or further matches not shown" : "")),
    table(["#", "Time", "Principal", "Action", "Target", "Decision", "Provenance (policy version, deciding policies)", "Outcome", "Detail"], rows));
}

// ---- Policies ----
async function policiesPage() {
  const p = await api("GET", "policies");
  const f = el("form", { class: "stack", id: "dry-run" },
    el("label", {}, "principal (user)", el("input", { name: "principal", value: "alice" })),
    el("label", {}, "client (optional)", el("input", { name: "client" })),
    el("label", {}, "action", el("input", { name: "action", value: "tools/call" })),
    el("label", {}, "tool (upstream/name)", el("input", { name: "tool", placeholder: "files/deploy" })),
    el("label", { class: "wide" }, "arguments (JSON object)", el("textarea", { name: "arguments" }, "{}")),
    el("div", {}, el("button", { type: "submit", class: "primary" }, "Dry run")));
  const out = el("div", { id: "dry-run-result" });
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = Object.fromEntries(new FormData(f));
    let args;
    try { args = d.arguments.trim() ? JSON.parse(d.arguments) : undefined; } catch (e) { flash("arguments: " + e.message, true); return; }
    try {
      const r = await api("POST", "policies/dry-run", { principal: d.principal, client: d.client || undefined, action: d.action || undefined, tool: d.tool, arguments: args });
      out.replaceChildren(el("div", { class: "result " + (r.decision === "deny" ? "bad" : "good") },
        el("div", {}, "Decision: ", el("strong", { class: "decision-" + r.decision }, r.decision)),
        el("div", {}, "Reason: ", r.reason),
        el("div", {}, "Deciding policies: ", r.policies.length ? r.policies.join(", ") : "(none)"),
        (r.errors || []).map((e) => el("div", { class: "bad" }, "Error: ", e)),
        el("div", { class: "muted" }, "Policy version ", r.policy_version)));
    } catch (e) { showError(e); }
  });
  main(el("h1", {}, "Policies"),
    p.configured ? el("p", {}, p.count + " policies loaded, version ", el("code", {}, p.version), " from ", p.paths.join(", ") || "-")
      : el("p", {}, "No policies are configured: every request is allowed."),
    el("h2", {}, "Dry run"), el("p", { class: "muted" }, "Could this principal make this call with these arguments? Decided by the policies in force; nothing is called."),
    f, out,
    policyFiles(p),
    el("h2", {}, "History of versions"),
    table(["#", "Time", "Version", "Outcome", "Detail"], p.history.map((r) => el("tr", {},
      el("td", { class: "num" }, r.seq), el("td", {}, when(r.time)), el("td", { class: "mono" }, r.policy_version || "-"), el("td", {}, r.outcome || "-"), el("td", {}, r.error || r.target || "")))));
}

// policyFiles shows the policy files as they are on disk, and whether
// they are the set in force.
function policyFiles(p) {
  const d = p.on_disk;
  if (!d) return null;
  const same = d.version && d.version === p.version;
  return el("div", { id: "policy-files" }, el("h2", {}, "Policy set"),
    el("p", { class: same ? "good" : "warnc" }, same ? "The files below are the set in force (version " + d.version + ")."
      : "The files on disk (version " + (d.version || "?") + ") differ from the set in force (" + p.version + "): they changed and were not reloaded yet, or do not load." ),
    d.error ? el("pre", { class: "bad" }, d.error) : null,
    d.files.map((f) => el("details", {}, el("summary", { class: "mono" }, f.name, " ", el("span", { class: "muted" }, f.path)),
      f.error ? el("p", { class: "bad" }, f.error) : el("pre", {}, f.text))),
    d.truncated ? el("p", { class: "muted" }, "More files than shown.") : null);
}

// ---- Approvals ----
async function approvalsPage() {
  const v = await api("GET", "approvals");
  const decide = async (id, decision, note) => {
    try {
      await api("POST", "approvals/" + encodeURIComponent(id), { decision, note: note || undefined });
      flash((decision === "approve" ? "Approved " : "Denied ") + id + ".");
      route();
    } catch (e) { showError(e); }
  };
  const pending = v.pending.map((a) => {
    const note = el("input", { type: "text", placeholder: "note (optional)", size: 24 });
    return el("tr", { "data-approval": a.ID },
      el("td", {}, when(a.CreatedAt)), el("td", {}, a.Request.Principal), el("td", {}, short(a.Request.Client, 40)),
      el("td", {}, a.Request.Tool), el("td", {}, a.arguments_note ? el("div", { class: "warnc" }, a.arguments_note) : null, el("pre", { class: "arguments" }, a.arguments_text || "(no arguments)")),
      el("td", {}, (a.Request.Policies || []).join(", "), el("div", { class: "muted mono" }, "v " + short(a.Request.PolicyVersion, 10))),
      el("td", {}, when(a.ExpiresAt)),
      el("td", {}, note, el("div", {},
        el("button", { type: "button", class: "ok", "data-approve": a.ID, onclick: () => decide(a.ID, "approve", note.value) }, "Approve"), " ",
        el("button", { type: "button", class: "danger", "data-deny": a.ID, onclick: () => decide(a.ID, "deny", note.value) }, "Deny"))));
  });
  main(el("h1", {}, "Approvals"),
    el("h2", {}, "Pending"),
    table(["Requested", "Principal", "Client", "Tool", "Exact arguments", "Required by", "Expires", "Decision"], pending),
    el("p", { class: "muted" }, "Approving allows this exact call, with these exact arguments, once, until it expires."),
    el("h2", {}, "History"),
    table(["#", "Time", "Approver", "Approval", "Decision", "Detail"], v.history.map((r) => el("tr", {},
      el("td", { class: "num" }, r.seq), el("td", {}, when(r.time)), el("td", {}, r.user || "-"), el("td", { class: "mono" }, r.target),
      el("td", { class: "decision-" + r.decision }, r.decision || "-"), el("td", {}, r.error || "")))));
}

// ---- Clients and tools awaiting approval ----
async function trustPage() {
  const v = await api("GET", "trust");
  const post = async (path, body, msg) => {
    try { await api("POST", path, body); flash(msg); route(); } catch (e) { showError(e); }
  };
  const rows = v.waiting.map((d) => {
    const cell = el("td", {});
    if (d.kind === "tool") {
      cell.append(el("button", { type: "button", class: "ok", "data-approve-tool": d.id, onclick: () => post("trust/tools", { upstream: d.upstream, tool: d.tool }, "Approved tool " + d.id + ".") }, "Approve definition"));
    } else {
      cell.append(el("button", { type: "button", class: "ok", "data-approve-client": d.id, onclick: () => post("trust/clients", { client_id: d.id, decision: "approve" }, "Approved client " + d.id + ".") }, "Approve"), " ",
        el("button", { type: "button", class: "danger", "data-refuse-client": d.id, onclick: () => cell.append(confirmBox("Refuse client " + d.id + "? It obtains no token on any path and its live tokens are revoked.", "Yes, refuse", (reason) => post("trust/clients", { client_id: d.id, decision: "refuse", reason: reason || undefined }, "Refused client " + d.id + "."), true)) }, "Refuse"));
    }
    return el("tr", {}, el("td", {}, d.kind), el("td", { class: "mono" }, d.id), el("td", { class: "warnc" }, d.state), el("td", {}, d.detail || ""), cell);
  });
  const drift = v.clients.filter((c) => (c.Drift || []).length).map((c) => el("div", {}, el("h2", {}, "Changes of ", c.ID),
    table(["Trust object", "Approved", "Now"], c.Drift.map((d) => el("tr", {}, el("td", {}, d.What), el("td", {}, el("pre", {}, (d.Old || []).join("\n"))), el("td", {}, el("pre", {}, (d.New || []).join("\n"))))))));
  main(el("h1", {}, "Clients and tools awaiting approval"),
    el("p", { class: "muted" }, "New tools held by inventory.new_tools: approve, changed tool definitions, clients pending admission and clients whose redirect URIs or keys changed. A tool that is not approved stays hidden and refused."),
    table(["Kind", "Id", "State", "Detail", "Decision (administrator)"], rows), drift);
}

// ---- Routing ----
const pages = { overview, inventory, audit: auditPage, policies: policiesPage, approvals: approvalsPage, trust: trustPage };

async function route() {
  const h = location.hash.replace(/^#/, "") || "overview";
  const [name, qs] = h.split("?");
  const page = pages[name] ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  document.body.dataset.page = page;
  try {
    await pages[page](new URLSearchParams(qs || ""));
    document.body.dataset.loaded = page;
  } catch (e) {
    if (e.status !== 401) { main(el("h1", {}, "Could not load this page"), el("p", { class: "bad" }, e.message)); }
  }
}

async function start() {
  try { me = await api("GET", "me"); } catch (e) { if (e.status !== 401) main(el("p", { class: "bad" }, e.message)); return; }
  document.getElementById("who").textContent = me.user + " (" + me.role + ")";
  document.getElementById("signout").addEventListener("click", async () => {
    try { await api("POST", "signout"); } catch (e) { /* signed out already */ }
    if (me.sign_out_url) { try { await fetch(me.sign_out_url, { method: "POST", credentials: "same-origin" }); } catch (e) { /* best effort */ } }
    me = null;
    document.getElementById("who").textContent = "";
    main(el("h1", {}, "Signed out"), el("p", {}, el("a", { href: base }, "Sign in again")));
  });
  window.addEventListener("hashchange", () => { flash(""); route(); });
  route();
}

start();
