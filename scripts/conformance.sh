#!/usr/bin/env bash
# conformance.sh: run the official MCP conformance suite against mcpgate's fixtures.
#
# Usage: scripts/conformance.sh [PART...]
#   PART is one of:
#     server        conformance server --requirements 2025-11-25 (30 scored + 3 unscored scenarios)
#     server-0618   conformance server --spec-version 2025-06-18
#     server-2026   conformance server --requirements 2026-07-28 (modern, stateless requests on
#                   the same endpoint: the scored, the pending and the tasks-* extension
#                   scenarios), baseline conformance/expected-failures-server-2026.yaml (empty)
#     client        conformance client --requirements 2025-11-25 --expected-failures ...
#     client-backcompat  conformance client --suite backcompat (the 2025-03-26 auth scenarios)
#     client-2026   conformance client --requirements 2026-07-28 (the client speaks 2026-07-28:
#                   server/discover, _meta envelope, Mcp-* headers, MRTR, and the auth scenarios),
#                   baseline conformance/expected-failures-client-2026.yaml
#     gateway-http  conformance server --requirements 2025-11-25 against `mcpgate serve` in front of
#                   everything-server (empty prefix) as a Streamable HTTP upstream
#     gateway-stdio the same with everything-server as a stdio upstream
#     gateway-2026  conformance server --requirements 2026-07-28 against `mcpgate serve` in front of
#                   everything-server as a Streamable HTTP upstream pinned to 2026-07-28 (modern
#                   clients through the gateway to a modern upstream: MRTR rounds, tasks and list
#                   changes passed through), baseline conformance/expected-failures-server-2026.yaml
#     all           all of the above (the default)
#
# Every scenario in every run must pass: the script reads each checks.json itself
# (scripts/conformance-verdict.mjs) because the CLI's exit code ignores WARNING checks, the
# unscored scenarios and the client's exit status. Exit status 0 only if every run passed.
#
# As root, the runs happen inside a fresh network namespace (`unshare -n`, loopback only), so
# no traffic can leave the machine. Building and installing happen before, outside it.
#
# Environment (all optional):
#   CONF_HOME                 cache folder for Node 22 and the suite (see install-conformance.sh)
#   CONFORMANCE_RESULTS       results folder (default: results/conformance-<UTC time> in the repo)
#   CONFORMANCE_RUN_TIMEOUT   seconds per harness run (default 600)
#   CONFORMANCE_CLIENT_TIMEOUT seconds per client process (default 25; the harness kills at 30)
#   CONFORMANCE_SERVER_CMD    server command template instead of the everything-server fixture;
#                             "{addr}" is replaced by 127.0.0.1:PORT, "{port}" by PORT
#   CONFORMANCE_SERVER_URL    test this already running server instead of starting one
#   CONFORMANCE_SERVER_PATH   endpoint path of a started server (default /mcp)
#   CONFORMANCE_CLIENT_CMD    client command instead of the everything-client fixture
#                             (no spaces in paths: the harness splits it on spaces)
#   CONFORMANCE_NETNS         auto (default: isolate when root), 1 (require), 0 (never)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
REVISION=2025-11-25
RUN_TIMEOUT=${CONFORMANCE_RUN_TIMEOUT:-600}
CLIENT_TIMEOUT=${CONFORMANCE_CLIENT_TIMEOUT:-25}
SERVER_PATH=${CONFORMANCE_SERVER_PATH:-/mcp}
SERVER_BASELINE=$REPO/conformance/expected-failures-server.yaml
SERVER_2026_BASELINE=$REPO/conformance/expected-failures-server-2026.yaml
CLIENT_BASELINE=$REPO/conformance/expected-failures-client.yaml
CLIENT_2026_BASELINE=$REPO/conformance/expected-failures-client-2026.yaml

log() { printf 'conformance: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ---------------------------------------------------------------------------------------------
# Generic building blocks. They take URLs and commands, so other suites (the gateway) can reuse
# them: source this file with CONFORMANCE_LIB=1 to get the functions without running anything.

# free_port: print a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# http_answers PORT: true if an HTTP server on 127.0.0.1:PORT answers a request (any status).
http_answers() {
	local port=$1
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: localhost:%s\r\n\r\n' "$SERVER_PATH" "$port" >&3 || exit 1
		line=
		IFS= read -r -t 3 line <&3 || true
		[[ $line == HTTP/* ]]
	) 2>/dev/null
}

# http_ready PORT PATH: true if GET PATH on 127.0.0.1:PORT answers 200.
http_ready() {
	local port=$1 path=$2
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: localhost:%s\r\n\r\n' "$path" "$port" >&3 || exit 1
		line=
		IFS= read -r -t 3 line <&3 || true
		[[ $line == "HTTP/"*" 200"* ]]
	) 2>/dev/null
}

SERVER_PID=
SERVER_URL=
# start_server LOG TEMPLATE: start the server command TEMPLATE ("{addr}"/"{port}" substituted)
# in its own process group, logging to LOG. Sets SERVER_PID, SERVER_PORT and SERVER_URL, and
# returns once the server answers HTTP (and, if SERVER_READY_PATH is set, answers 200 there), or
# fails after 30s or if the server exits.
start_server() {
	local logf=$1 template=$2 attempt cmd
	for attempt in 1 2 3; do
		SERVER_PORT=$(free_port) || die "no free port found"
		cmd=${template//"{addr}"/127.0.0.1:$SERVER_PORT}
		cmd=${cmd//"{port}"/$SERVER_PORT}
		log "starting server: $cmd"
		setsid bash -c "exec $cmd" >"$logf" 2>&1 </dev/null &
		SERVER_PID=$!
		for _ in $(seq 1 150); do
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				break
			fi
			if http_answers "$SERVER_PORT" && { [[ -z ${SERVER_READY_PATH:-} ]] || http_ready "$SERVER_PORT" "$SERVER_READY_PATH"; }; then
				SERVER_URL=http://localhost:$SERVER_PORT$SERVER_PATH
				log "server up at $SERVER_URL (pid $SERVER_PID)"
				return 0
			fi
			sleep 0.2
		done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			stop_server
			log "server did not answer on port $SERVER_PORT within 30s; log tail:"
			tail -n 20 "$logf" >&2 || true
			return 1
		fi
		wait "$SERVER_PID" 2>/dev/null || true
		log "server exited during start-up (attempt $attempt); log tail:"
		tail -n 20 "$logf" >&2 || true
		SERVER_PID=
	done
	return 1
}

# stop_server: stop the process group started by start_server (TERM, then KILL after 5s).
stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# harness ARGS...: run the conformance CLI (Node 22) under timeout.
harness() {
	timeout --kill-after=15 "$RUN_TIMEOUT" "$NODE_BIN" "$CONF_JS" "$@"
}

# scenario_list OUTFILE LIST-ARGS...: write the scenario names `conformance list LIST-ARGS`
# selects for one leg (server or client) into OUTFILE.
scenario_list() {
	local out=$1 leg=$2
	shift 2
	harness list "$@" | awk -v leg="$leg" '
		/^Server scenarios/ { sec = "server"; next }
		/^Client scenarios/ { sec = "client"; next }
		/^Run and reported/ { sec = "notscored"; next }
		/^Authorization/    { sec = "other"; next }
		/^ *- / {
			name = $2
			if (sec == leg) { print name }
			else if (sec == "notscored" && $3 == "[" leg "]") { print name }
		}' >"$out"
	[[ -s $out ]] || die "conformance list $* selected no $leg scenarios"
}

# show_console LOG: print the harness's own summary from LOG (everything from its SUMMARY
# banner on), or the tail of LOG if it never got that far.
show_console() {
	local logf=$1
	if grep -q '=== \(SUITE \)\{0,1\}SUMMARY ===' "$logf"; then
		sed -n '/=== \(SUITE \)\{0,1\}SUMMARY ===/,$p' "$logf"
	else
		log "the harness printed no summary; last lines of $logf:"
		tail -n 40 "$logf"
	fi
}

RUN_LINES=()
RUN_FAILED=0
# record LABEL RC: remember a run's verdict line for the final summary.
record() {
	local label=$1 rc=$2 line
	line=$(cat "$RESULTS/$label/verdict.txt" 2>/dev/null || echo "$label: FAIL: no verdict (exit $rc)")
	RUN_LINES+=("$line")
	[[ $rc -eq 0 ]] || RUN_FAILED=$((RUN_FAILED + 1))
}

# server_suite LABEL URL LIST-ARGS -- RUN-ARGS: run `conformance server --url URL RUN-ARGS`
# into $RESULTS/LABEL and judge it. LIST-ARGS select the same scenarios for `conformance list`.
server_suite() {
	local label=$1 url=$2 dir=$RESULTS/$1
	shift 2
	local list_args=()
	while [[ $# -gt 0 && $1 != -- ]]; do
		list_args+=("$1")
		shift
	done
	[[ ${1:-} == -- ]] && shift
	mkdir -p "$dir"
	scenario_list "$dir/scenarios.txt" server "${list_args[@]}"
	log "$label: $(wc -l <"$dir/scenarios.txt") scenarios against $url"
	local rc=0
	harness server --url "$url" -o "$dir" --expected-failures "$SERVER_BASELINE" "$@" \
		>"$dir/console.log" 2>&1 || rc=$?
	show_console "$dir/console.log"
	[[ $rc -eq 124 || $rc -eq 137 ]] && log "$label: harness timed out after ${RUN_TIMEOUT}s"
	"$NODE_BIN" "$SCRIPTS/conformance-verdict.mjs" --label "$label" --leg server --dir "$dir" \
		--scenarios "$dir/scenarios.txt" --expected-failures "$SERVER_BASELINE" \
		--harness-rc "$rc" --conformance-js "$CONF_JS"
}

# with_server LABEL TEMPLATE FUNC ARGS...: start the server TEMPLATE, run FUNC LABEL URL ARGS...,
# stop the server. With CONFORMANCE_SERVER_URL set, run FUNC against that URL instead.
with_server() {
	local label=$1 template=$2 fn=$3
	shift 3
	mkdir -p "$RESULTS/$label"
	if [[ -n ${CONFORMANCE_SERVER_URL:-} ]]; then
		"$fn" "$label" "$CONFORMANCE_SERVER_URL" "$@"
		return
	fi
	if ! start_server "$RESULTS/$label/server.log" "$template"; then
		echo "$label: FAIL: server did not start (see $RESULTS/$label/server.log)" >"$RESULTS/$label/verdict.txt"
		return 1
	fi
	local rc=0
	"$fn" "$label" "$SERVER_URL" "$@" || rc=$?
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		log "$label: the server exited during the run; log tail:"
		tail -n 20 "$RESULTS/$label/server.log" >&2 || true
		rc=1
	fi
	stop_server
	return "$rc"
}

# client_suite LABEL CLIENT-CMD [LIST-ARGS -- RUN-ARGS]: run `conformance client RUN-ARGS`
# (default: --requirements $REVISION) against CLIENT-CMD (wrapped to record its exit status
# per scenario) into $RESULTS/LABEL and judge it. LIST-ARGS select the same scenarios for
# `conformance list`.
client_suite() {
	local label=$1 client_cmd=$2 dir=$RESULTS/$1
	shift 2
	local list_args=() run_args=()
	if [[ $# -eq 0 ]]; then
		list_args=(--requirements "$REVISION")
		run_args=(--requirements "$REVISION")
	else
		while [[ $# -gt 0 && $1 != -- ]]; do
			list_args+=("$1")
			shift
		done
		[[ ${1:-} == -- ]] && shift
		run_args=("$@")
	fi
	mkdir -p "$dir"
	scenario_list "$dir/scenarios.txt" client "${list_args[@]}"
	local wrapper=$dir/client-wrapper.sh
	[[ $wrapper != *[[:space:]]* ]] || die "results path must not contain spaces: $dir"
	# The harness runs "/bin/sh -c '<cmd> <url>'" and on timeout kills only the shell, so the
	# wrapper bounds the client itself and records "<scenario>\t<exit status>" lines.
	cat >"$wrapper" <<-EOF
		#!/usr/bin/env bash
		rc=0
		timeout --kill-after=2 $CLIENT_TIMEOUT $client_cmd "\$@" || rc=\$?
		printf '%s\t%s\n' "\${MCP_CONFORMANCE_SCENARIO:-?}" "\$rc" >>'$dir/client-exits.tsv'
		exit "\$rc"
	EOF
	chmod +x "$wrapper"
	: >"$dir/client-exits.tsv"
	log "$label: $(wc -l <"$dir/scenarios.txt") scenarios, client: $client_cmd"
	local rc=0
	harness client --command "$wrapper" "${run_args[@]}" \
		--expected-failures "$CLIENT_BASELINE" -o "$dir" >"$dir/console.log" 2>&1 || rc=$?
	show_console "$dir/console.log"
	[[ $rc -eq 124 || $rc -eq 137 ]] && log "$label: harness timed out after ${RUN_TIMEOUT}s"
	"$NODE_BIN" "$SCRIPTS/conformance-verdict.mjs" --label "$label" --leg client --dir "$dir" \
		--scenarios "$dir/scenarios.txt" --expected-failures "$CLIENT_BASELINE" \
		--client-exits "$dir/client-exits.tsv" --harness-rc "$rc" --conformance-js "$CONF_JS"
}

# ---------------------------------------------------------------------------------------------

# run_parts PART...: the runs themselves (inside the network namespace when isolated).
run_parts() {
	local part rc
	trap stop_server EXIT
	trap 'stop_server; exit 143' TERM INT HUP
	for part in "$@"; do
		rc=0
		case $part in
		server | server-0618)
			if [[ -n ${SERVER_BROKEN:-} ]]; then
				if [[ $part == server ]]; then skip_run server-$REVISION "$SERVER_BROKEN"; else skip_run server-2025-06-18 "$SERVER_BROKEN"; fi
				continue
			fi
			;;&
		client | client-backcompat | client-2026)
			if [[ -n ${CLIENT_BROKEN:-} ]]; then
				skip_run "$part" "$CLIENT_BROKEN"
				continue
			fi
			;;&
		server)
			with_server server-$REVISION "$SERVER_TEMPLATE" server_suite \
				--requirements "$REVISION" -- --requirements "$REVISION" || rc=$?
			record server-$REVISION "$rc"
			;;
		server-0618)
			with_server server-2025-06-18 "$SERVER_TEMPLATE" server_suite \
				--server --spec-version 2025-06-18 -- --spec-version 2025-06-18 || rc=$?
			record server-2025-06-18 "$rc"
			;;
		server-2026)
			if [[ -n ${SERVER_BROKEN:-} ]]; then
				skip_run server-2026-07-28 "$SERVER_BROKEN"
				continue
			fi
			SERVER_BASELINE=$SERVER_2026_BASELINE with_server server-2026-07-28 "$SERVER_TEMPLATE" server_suite \
				--requirements 2026-07-28 -- --requirements 2026-07-28 || rc=$?
			record server-2026-07-28 "$rc"
			;;
		client)
			client_suite client-$REVISION "$CLIENT_CMD" || rc=$?
			record client-$REVISION "$rc"
			;;
		client-backcompat)
			client_suite client-backcompat "$CLIENT_CMD" \
				--client --spec-version 2025-03-26 -- --suite backcompat || rc=$?
			record client-backcompat "$rc"
			;;
		client-2026)
			CLIENT_BASELINE=$CLIENT_2026_BASELINE client_suite client-2026-07-28 "$CLIENT_CMD" \
				--client --requirements 2026-07-28 -- --requirements 2026-07-28 || rc=$?
			record client-2026-07-28 "$rc"
			;;
		gateway-http | gateway-stdio)
			if [[ -n ${GATEWAY_BROKEN:-} || -n ${SERVER_BROKEN:-} ]]; then
				skip_run "$part" "${GATEWAY_BROKEN:-$SERVER_BROKEN}"
				continue
			fi
			# The gateway listens at once; its upstream comes up in the
			# background: wait until /readyz says it is ready.
			SERVER_READY_PATH=/readyz with_server "$part" "$SCRIPTS/gateway-fixture.sh ${part#gateway-} {addr} $BIN" server_suite \
				--requirements "$REVISION" -- --requirements "$REVISION" || rc=$?
			record "$part" "$rc"
			;;
		gateway-2026)
			if [[ -n ${GATEWAY_BROKEN:-} || -n ${SERVER_BROKEN:-} ]]; then
				skip_run "$part" "${GATEWAY_BROKEN:-$SERVER_BROKEN}"
				continue
			fi
			GATEWAY_FIXTURE_ROOTS=relay GATEWAY_FIXTURE_PROTOCOL=2026-07-28 SERVER_BASELINE=$SERVER_2026_BASELINE SERVER_READY_PATH=/readyz with_server "$part" "$SCRIPTS/gateway-fixture.sh http {addr} $BIN" server_suite \
				--requirements 2026-07-28 -- --requirements 2026-07-28 || rc=$?
			record "$part" "$rc"
			;;
		esac
	done
	echo
	echo "=== conformance summary ($RESULTS) ==="
	local l
	for l in "${RUN_LINES[@]}"; do echo "$l"; done
	local n=${#RUN_LINES[@]}
	echo "conformance: $((n - RUN_FAILED)) of $n runs passed"
	[[ $RUN_FAILED -eq 0 ]]
}

# build_fixture NAME: go build ./conformance/NAME into $BIN/NAME. On failure it prints why and
# returns 1; the runs that need the fixture then fail without running.
build_fixture() {
	local name=$1
	if [[ ! -d $REPO/conformance/$name ]]; then
		log "error: conformance/$name not found: the fixture program has not been written yet"
		return 1
	fi
	log "building conformance/$name"
	if ! (cd "$REPO" && timeout 600 go build -o "$BIN/$name" "./conformance/$name"); then
		log "error: go build ./conformance/$name failed"
		return 1
	fi
}

# skip_run LABEL WHY: record LABEL as failed without running it.
skip_run() {
	mkdir -p "$RESULTS/$1"
	echo "$1: FAIL: not run: $2" >"$RESULTS/$1/verdict.txt"
	record "$1" 1
}

main() {
	local parts=() a
	[[ $# -gt 0 ]] || set -- all
	for a in "$@"; do
		case $a in
		all) parts+=(server server-0618 server-2026 client client-backcompat client-2026 gateway-http gateway-stdio gateway-2026) ;;
		server | server-0618 | server-2026 | client | client-backcompat | client-2026 | gateway-http | gateway-stdio | gateway-2026) parts+=("$a") ;;
		-h | --help)
			sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
			return 0
			;;
		*) die "unknown part '$a' (want server, server-0618, server-2026, client, client-backcompat, client-2026, gateway-http, gateway-stdio, gateway-2026 or all)" ;;
		esac
	done

	local need_server=0 need_client=0 need_gateway=0
	for a in "${parts[@]}"; do
		[[ $a == client* ]] && need_client=1 || need_server=1
		[[ $a == gateway-* ]] && need_gateway=1
	done

	# Tools, before anything slow.
	local t
	for t in go timeout setsid; do
		command -v "$t" >/dev/null || die "$t not found"
	done

	local conf_env
	conf_env=$("$SCRIPTS/install-conformance.sh") || die "installing the conformance suite failed"
	eval "$conf_env"
	export NODE_BIN CONF_JS CONF_HOME
	PATH=$(dirname "$NODE_BIN"):$PATH
	export PATH

	BIN=$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-conformance.XXXXXX")
	export BIN
	trap 'rm -rf "$BIN"' EXIT
	SERVER_BROKEN='' CLIENT_BROKEN=''
	export SERVER_BROKEN CLIENT_BROKEN
	if [[ $need_server -eq 1 && -z ${CONFORMANCE_SERVER_CMD:-} && -z ${CONFORMANCE_SERVER_URL:-} ]]; then
		build_fixture everything-server || SERVER_BROKEN="conformance/everything-server is missing or does not build"
	fi
	GATEWAY_BROKEN=''
	export GATEWAY_BROKEN
	if [[ $need_gateway -eq 1 ]]; then
		log "building cmd/mcpgate"
		if ! (cd "$REPO" && timeout 600 go build -o "$BIN/mcpgate" ./cmd/mcpgate); then
			GATEWAY_BROKEN="cmd/mcpgate does not build"
		fi
		if [[ ! -x $BIN/everything-server ]]; then
			build_fixture everything-server || GATEWAY_BROKEN="conformance/everything-server is missing or does not build"
		fi
	fi
	if [[ $need_client -eq 1 && -z ${CONFORMANCE_CLIENT_CMD:-} ]]; then
		build_fixture everything-client || CLIENT_BROKEN="conformance/everything-client is missing or does not build"
	fi
	RESULTS=${CONFORMANCE_RESULTS:-$REPO/results/conformance-$(date -u +%Y%m%dT%H%M%SZ)}
	mkdir -p "$RESULTS"
	RESULTS=$(cd "$RESULTS" && pwd)
	export RESULTS
	local default_server="$BIN/everything-server -addr {addr}"
	export SERVER_TEMPLATE=${CONFORMANCE_SERVER_CMD:-$default_server}
	export CLIENT_CMD=${CONFORMANCE_CLIENT_CMD:-$BIN/everything-client}

	local netns=${CONFORMANCE_NETNS:-auto} isolate=0
	case $netns in
	0) ;;
	1 | auto)
		if [[ $(id -u) -eq 0 ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
			unshare -n true 2>/dev/null; then
			isolate=1
		elif [[ $netns == 1 ]]; then
			die "CONFORMANCE_NETNS=1 but 'unshare -n' is not usable (need root, util-linux and iproute2)"
		elif [[ $(id -u) -eq 0 ]]; then
			log "warning: running as root but 'unshare -n' or 'ip' is unusable; running without network isolation"
		fi
		;;
	*) die "CONFORMANCE_NETNS must be auto, 0 or 1" ;;
	esac
	[[ -n ${CONFORMANCE_SERVER_URL:-} ]] && isolate=0 # an external server is outside the namespace

	local rc=0
	if [[ $isolate -eq 1 ]]; then
		log "running inside a new network namespace (loopback only)"
		# shellcheck disable=SC2016 # expanded by the inner shell
		unshare -n -- "$BASH" -c 'ip link set lo up || exit 1; exec "$0" __inner "$@"' \
			"${BASH_SOURCE[0]}" "${parts[@]}" || rc=$?
	else
		run_parts "${parts[@]}" || rc=$?
	fi
	log "results in $RESULTS"
	return "$rc"
}

if [[ ${CONFORMANCE_LIB:-0} != 1 ]]; then
	if [[ ${1:-} == __inner ]]; then
		shift
		run_parts "$@"
	else
		main "$@"
	fi
fi
