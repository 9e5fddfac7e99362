#!/usr/bin/env bash
# Prints the path of a helm binary of the pinned release: $HELM_BIN, the per-user cache, a build from the
# official Go module pinned in go.mod beside this script, the official release download, or an error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3; exit}' "$here/go.mod")"
cache="${MCP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-operator}/helm/$version"
log() { echo "helm: $*" >&2; }

if [[ -n "${HELM_BIN:-}" && -x "$HELM_BIN" ]]; then echo "$HELM_BIN"; exit 0; fi
if [[ -x "$cache/helm" ]]; then echo "$cache/helm"; exit 0; fi
mkdir -p "$cache"
if command -v go >/dev/null; then
  log "building helm $version from the official Go module (about a minute)"
  started=$SECONDS
  if (cd "$here" && GOFLAGS="${GOFLAGS:-} -mod=mod -trimpath" CGO_ENABLED=0 go build \
        -ldflags "-s -X helm.sh/helm/v3/internal/version.version=$version" -o "$cache/helm.partial" helm.sh/helm/v3/cmd/helm >&2); then
    mv "$cache/helm.partial" "$cache/helm"; log "built in $((SECONDS - started)) s"; echo "$cache/helm"; exit 0
  fi
  log "go build failed"
fi
arch="$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')"
if command -v curl >/dev/null && curl -fsSL --max-time 300 "https://get.helm.sh/helm-$version-linux-$arch.tar.gz" \
    | tar -xz -C "$cache" --strip-components=1 "linux-$arch/helm" 2>/dev/null; then
  echo "$cache/helm"; exit 0
fi
echo "helm: could not obtain helm $version: set HELM_BIN, install Go >= 1.26 with a module proxy, or allow get.helm.sh" >&2
exit 1
