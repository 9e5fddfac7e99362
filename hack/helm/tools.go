//go:build tools

// Package helm only records which command is built from the pinned module.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
