// Command velero is Velero's own CLI and server (`velero server`, `velero install`, `velero backup …`),
// built from the pinned upstream module through this wrapper: Velero's go.mod replaces kopia with
// Velero's fork, so `go install …/cmd/velero@version` refuses it.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
)

func main() {
	baseName := filepath.Base(os.Args[0])
	err := velero.NewCommand(baseName).Execute()
	cmd.CheckError(err)
}
