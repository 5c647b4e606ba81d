//go:build tools

// Keeps the commands' dependencies in go.mod and go.sum (they are main packages, built by ./build).
package tools

import (
	_ "github.com/vmware-tanzu/velero/pkg/cmd/velero"
)
