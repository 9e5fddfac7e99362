#!/usr/bin/env bash
# Prints the path of a directory holding kube-apiserver, etcd and kubectl of the pinned release.
#
# Resolution order (first hit wins):
#   1. $KUBEBUILDER_ASSETS, the controller-runtime envtest convention, if it holds all three binaries;
#   2. the per-user cache ~/.cache/mcp-operator/envtest/<release>/ (or $MCP_OPERATOR_CACHE);
#   3. a build from the official Go modules pinned in go.mod beside this script;
#   4. the official release downloads (dl.k8s.io, github.com/etcd-io), for machines that reach them;
#   5. an error naming these options.
# Nothing built here is ever written inside the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binaries=(kube-apiserver etcd kubectl)

# The one place a release is named is go.mod; read both versions from it.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$here/go.mod")"
release="k8s-${k8s_version}-etcd-${etcd_version}"
cache_root="${MCP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-operator}"
cache_dir="$cache_root/envtest/$release"

log() { echo "envtest: $*" >&2; }

has_all() {
  local dir="$1" b
  for b in "${binaries[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

from_assets() {
  [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && has_all "$KUBEBUILDER_ASSETS" && echo "$KUBEBUILDER_ASSETS"
}

build_from_modules() {
  command -v go >/dev/null || { log "no Go toolchain on PATH"; return 1; }
  local staging="$cache_dir.partial" started=$SECONDS
  rm -rf "$staging" && mkdir -p "$staging"
  log "building $release from the official Go modules (first build takes several minutes)"
  (
    cd "$here" || exit 1
    export GOFLAGS="${GOFLAGS:-} -mod=mod -trimpath" CGO_ENABLED=0
    # Stamp the release into the binaries, as the official build does, so /version and kubectl tell the truth.
    local minor="${k8s_version#v1.}"; minor="${minor%%.*}"
    local pkg=k8s.io/component-base/version
    local stamp="-s -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    go build -ldflags=-s -o "$staging/etcd" go.etcd.io/etcd/server/v3
    go build -ldflags="$stamp" -o "$staging/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    go build -ldflags="$stamp" -o "$staging/kubectl" k8s.io/kubernetes/cmd/kubectl
  ) >&2 || { log "go build failed"; return 1; }
  mv "$staging" "$cache_dir"
  log "built in $((SECONDS - started)) s into $cache_dir"
}

download_release() {
  command -v curl >/dev/null || return 1
  local staging="$cache_dir.partial" arch
  arch="$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')"
  rm -rf "$staging" && mkdir -p "$staging"
  log "downloading the official $k8s_version / etcd $etcd_version release binaries"
  for b in kube-apiserver kubectl; do
    curl -fsSL --max-time 300 -o "$staging/$b" "https://dl.k8s.io/release/$k8s_version/bin/linux/$arch/$b" || return 1
  done
  curl -fsSL --max-time 300 "https://github.com/etcd-io/etcd/releases/download/$etcd_version/etcd-$etcd_version-linux-$arch.tar.gz" \
    | tar -xz -C "$staging" --strip-components=1 "etcd-$etcd_version-linux-$arch/etcd" || return 1
  chmod +x "$staging"/*
  mv "$staging" "$cache_dir"
}

main() {
  if from_assets; then return; fi
  if has_all "$cache_dir"; then echo "$cache_dir"; return; fi
  mkdir -p "$(dirname "$cache_dir")"
  if build_from_modules || download_release; then
    has_all "$cache_dir" && { echo "$cache_dir"; return; }
  fi
  rm -rf "$cache_dir.partial"
  cat >&2 <<EOF
envtest: could not obtain kube-apiserver, etcd and kubectl ($release). Any one of these works:
  - set KUBEBUILDER_ASSETS to a directory holding all three (e.g. from setup-envtest);
  - put them in $cache_dir;
  - install Go >= 1.26 with access to a Go module proxy, and rerun 'make envtest' to build them;
  - allow downloads from dl.k8s.io and github.com for the official release binaries.
EOF
  return 1
}

main
