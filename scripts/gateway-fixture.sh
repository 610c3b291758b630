#!/usr/bin/env bash
# gateway-fixture.sh MODE ADDR BIN: run `mcpgate serve` on ADDR in front of the conformance
# everything-server with an empty prefix, for running the server conformance suite through the
# gateway. MODE "http" starts everything-server on a free loopback port and makes it a
# Streamable HTTP upstream; MODE "stdio" has the gateway start it as a stdio upstream.
# BIN holds the built mcpgate and everything-server binaries. GATEWAY_FIXTURE_ROOTS sets the
# HTTP upstream's roots setting (default none; the gateway-2026 run uses relay), and
# GATEWAY_FIXTURE_PROTOCOL its protocol pin (default empty: discover; the gateway-2026 run pins
# 2026-07-28). The processes share this
# script's process group, which scripts/conformance.sh stops as a whole.
set -euo pipefail
mode=$1 addr=$2 bin=$3
data=$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-gw.XXXXXX")
cfg=$data/gateway.yaml
case $mode in
http)
	port=
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
	done
	[[ -n $port ]] || { echo "gateway-fixture: no free port" >&2; exit 1; }
	"$bin/everything-server" -addr "127.0.0.1:$port" &
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
	cat >"$cfg" <<-YAML
		auth: none
		data_dir: $data
		upstreams:
		  - name: everything
		    url: http://127.0.0.1:$port/mcp
		    transport: streamable
		    prefix: ""
		    roots: ${GATEWAY_FIXTURE_ROOTS:-none}
		    protocol: "${GATEWAY_FIXTURE_PROTOCOL:-}"
	YAML
	;;
stdio)
	cat >"$cfg" <<-YAML
		auth: none
		data_dir: $data
		upstreams:
		  - name: everything
		    command: ["$bin/everything-server", "-stdio"]
		    prefix: ""
		    # A stdio upstream cannot close a call's stream the way an HTTP one
		    # does (test_reconnection asks to): have the gateway close the
		    # client's stream of calls still running after 50ms, so that the
		    # client polls, which is what server-sse-polling checks.
		    poll_after: 50ms
	YAML
	;;
*)
	echo "gateway-fixture: unknown mode $mode (want http or stdio)" >&2
	exit 2
	;;
esac
exec "$bin/mcpgate" serve --config "$cfg" --listen "$addr"
