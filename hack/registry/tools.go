//go:build tools

// Package registry only records which command is built from the pinned module: the CNCF distribution
// registry, a real OCI registry the tests push bundles to and the operator pulls them from.
package registry

import _ "github.com/distribution/distribution/v3/cmd/registry"
