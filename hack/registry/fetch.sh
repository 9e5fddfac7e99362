#!/usr/bin/env bash
# Prints the path of an OCI registry binary (the CNCF distribution registry) for tests: $MCP_REGISTRY_BIN, the
# per-user cache, a build from the official Go module pinned in go.mod beside this script, Debian's
# docker-registry package if installed, or an error. Nothing is written inside the repository.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "require" && $2 == "github.com/distribution/distribution/v3" {print $3; exit}' "$here/go.mod")"
cache="${MCP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-operator}/registry/$version"
log() { echo "registry: $*" >&2; }

if [[ -n "${MCP_REGISTRY_BIN:-}" && -x "$MCP_REGISTRY_BIN" ]]; then echo "$MCP_REGISTRY_BIN"; exit 0; fi
if [[ -x "$cache/registry" ]]; then echo "$cache/registry"; exit 0; fi
mkdir -p "$cache"
if command -v go >/dev/null; then
  log "building the distribution registry $version from its official Go module (about a minute and a half)"
  started=$SECONDS
  if (cd "$here" && GOFLAGS="${GOFLAGS:-} -mod=mod -trimpath" CGO_ENABLED=0 go build -ldflags=-s \
        -o "$cache/registry.partial" github.com/distribution/distribution/v3/cmd/registry >&2); then
    mv "$cache/registry.partial" "$cache/registry"; log "built in $((SECONDS - started)) s"; echo "$cache/registry"; exit 0
  fi
  log "go build failed"
fi
if [[ -x /usr/bin/docker-registry ]]; then echo /usr/bin/docker-registry; exit 0; fi
echo "registry: could not obtain an OCI registry: set MCP_REGISTRY_BIN, install Go >= 1.26 with a module proxy, or" \
     "apt-get install docker-registry" >&2
exit 1
