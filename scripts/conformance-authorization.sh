#!/usr/bin/env bash
# conformance-authorization.sh: run `conformance authorization` (the official MCP conformance
# suite's authorization-server scenarios: authorization-server-metadata-endpoint and
# authorization-code-grant) against mcpgate's built-in authorization server.
#
# The server runs as internal/cmd/authserver-fixture on 127.0.0.1 with one pre-registered client
# whose authorization requests are approved automatically (no browser). The suite prints the
# authorization URL and waits for the redirect on http://127.0.0.1:<port>/callback; this script
# plays the browser: it GETs that URL with curl and follows the one redirect to the callback.
#
# Two passes, both must pass with 0 failures, 0 warnings and 0 skipped checks:
#   confidential  issuer at the origin root, client authenticates with its secret
#                 (--client-secret), public clients disabled so the suite uses client_secret_post
#   public        issuer with a path (/oauth: path-inserted well-known URI), public PKCE client
#
# Needs Node >= 22 and @modelcontextprotocol/conformance in CONF_HOME (scripts/install-conformance.sh
# puts them there), plus go and curl. As root the runs happen inside `unshare -n` (loopback only).
#
# Environment: CONF_HOME (default /root/.cache/mcp-conformance), CONFORMANCE_NETNS (auto|1|0),
# CONFORMANCE_RESULTS (results folder, default a temporary directory).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONF_HOME=${CONF_HOME:-/root/.cache/mcp-conformance}
export CONF_HOME

log() { printf 'conformance-authorization: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

find_node() {
	local n
	for n in "$CONF_HOME"/node22/node_modules/node-linux-*/bin/node "$CONF_HOME"/node/node_modules/node-linux-*/bin/node "$(command -v node || true)"; do
		[ -x "$n" ] || continue
		if [ "$("$n" -p 'process.versions.node.split(".")[0]')" -ge 22 ] 2>/dev/null; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

find_conf() {
	local c
	for c in "$CONF_HOME"/alpha/node_modules/@modelcontextprotocol/conformance/dist/index.js \
		"$CONF_HOME"/node_modules/@modelcontextprotocol/conformance/dist/index.js \
		"$CONF_HOME"/*/node_modules/@modelcontextprotocol/conformance/dist/index.js; do
		if [ -f "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

if [ "${1:-}" != "--inside" ]; then
	command -v go >/dev/null || die "go not found"
	command -v curl >/dev/null || die "curl not found"
	NODE=$(find_node) || die "Node >= 22 not found in $CONF_HOME (run scripts/install-conformance.sh)"
	CONF=$(find_conf) || die "conformance suite not found in $CONF_HOME (run scripts/install-conformance.sh)"
	"$NODE" "$CONF" authorization --help | grep -q -- '--resource' ||
		die "this conformance version has no --resource option; use 0.2.0-alpha.12 or later"
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
	log "building fixture"
	(cd "$REPO" && go build -o "$WORK/authserver-fixture" ./internal/cmd/authserver-fixture)
	export NODE CONF WORK
	export RESULTS=${CONFORMANCE_RESULTS:-$WORK/results}
	mkdir -p "$RESULTS"
	netns=${CONFORMANCE_NETNS:-auto}
	if [ "$netns" != 0 ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
		log "running inside a fresh network namespace (loopback only)"
		unshare -n bash "$0" --inside
		exit $?
	fi
	[ "$netns" = 1 ] && die "CONFORMANCE_NETNS=1 but cannot create a network namespace (need root, unshare, ip)"
	bash "$0" --inside
	exit $?
fi

# ----- inside: everything below only talks to 127.0.0.1 ---------------------------------------
ip link set lo up 2>/dev/null || true

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

FIXTURE_PID=""
CONF_PID=""
cleanup() {
	[ -n "$CONF_PID" ] && kill "$CONF_PID" 2>/dev/null || true
	[ -n "$FIXTURE_PID" ] && kill "$FIXTURE_PID" 2>/dev/null || true
}
trap cleanup EXIT

# run_pass NAME ISSUER_PATH CLIENT_SECRET FIXTURE_FLAGS...
run_pass() {
	local name=$1 path=$2 secret=$3
	shift 3
	local cbport rsport out="$RESULTS/$name"
	cbport=$(free_port) || die "no free port"
	rsport=$(free_port) || die "no free port"
	local resource="http://127.0.0.1:$rsport/mcp"
	mkdir -p "$out"
	log "[$name] starting fixture"
	"$WORK/authserver-fixture" -addr 127.0.0.1:0 -issuer-path "$path" -client-id "conformance-$name" \
		-client-secret "$secret" -redirect-uri "http://127.0.0.1:$cbport/callback" -resource "$resource" "$@" \
		>"$out/fixture.out" 2>"$out/fixture.log" &
	FIXTURE_PID=$!
	local issuer=""
	for _ in $(seq 1 100); do
		issuer=$(sed -n 's/^ISSUER //p' "$out/fixture.out" | head -1)
		[ -n "$issuer" ] && break
		kill -0 "$FIXTURE_PID" 2>/dev/null || die "[$name] fixture exited: $(cat "$out/fixture.log")"
		sleep 0.1
	done
	[ -n "$issuer" ] || die "[$name] fixture did not start"
	log "[$name] issuer $issuer, callback port $cbport"

	local args=(authorization --url "$issuer" --client-id "conformance-$name" --port "$cbport" --resource "$resource" -o "$out/checks")
	[ -n "$secret" ] && args+=(--client-secret "$secret")
	timeout 120 "$NODE" "$CONF" "${args[@]}" >"$out/conformance.out" 2>&1 &
	CONF_PID=$!
	# Play the browser: wait for the authorization URL, then GET it and follow the redirect.
	local authurl=""
	for _ in $(seq 1 300); do
		authurl=$(grep -m1 -E "^${issuer}/authorize\?" "$out/conformance.out" || true)
		[ -n "$authurl" ] && break
		kill -0 "$CONF_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ -n "$authurl" ]; then
		curl -sS -o /dev/null -L --max-redirs 1 --max-time 20 "$authurl" || log "[$name] browser request failed"
	else
		log "[$name] the suite printed no authorization URL"
	fi
	local rc=0
	wait "$CONF_PID" || rc=$?
	CONF_PID=""
	kill "$FIXTURE_PID" 2>/dev/null || true
	wait "$FIXTURE_PID" 2>/dev/null || true
	FIXTURE_PID=""
	cat "$out/conformance.out"
	# Verdict from checks.json: any FAILURE, WARNING or SKIPPED fails the pass.
	"$NODE" -e '
		const fs = require("fs"), path = require("path");
		const dir = process.argv[1]; let files = [];
		const walk = d => { for (const e of fs.readdirSync(d, {withFileTypes: true})) {
			const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.name === "checks.json") files.push(p); } };
		if (fs.existsSync(dir)) walk(dir);
		let bad = 0, ok = 0, scenarios = 0;
		for (const f of files) { scenarios++; for (const c of JSON.parse(fs.readFileSync(f, "utf8"))) {
			if (c.status === "SUCCESS" || c.status === "INFO") ok++;
			else { bad++; console.log(`  ${c.status} ${c.id}: ${c.errorMessage ?? c.description}`); } } }
		console.log(`verdict: ${scenarios} scenarios, ${ok} passed, ${bad} failed/warning/skipped`);
		process.exit(scenarios === 2 && bad === 0 && ok > 0 ? 0 : 1);
	' "$out/checks" || {
		log "[$name] FAILED (fixture log: $out/fixture.log)"
		return 1
	}
	[ "$rc" = 0 ] || {
		log "[$name] conformance exited $rc"
		return 1
	}
	log "[$name] passed"
}

status=0
run_pass confidential "" "conf-secret-$RANDOM$RANDOM" -no-public-clients || status=1
run_pass public /oauth "" || status=1
if [ "$status" = 0 ]; then log "all passes passed"; else log "some passes FAILED"; fi
exit "$status"
