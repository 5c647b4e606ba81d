// Command velero is Velero's own CLI and server (`velero server`, `velero install`, `velero backup …`),
// built from the pinned upstream module through this wrapper: Velero's go.mod replaces kopia with
// Velero's fork, so `go install …/cmd/velero@version` refuses it.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func main() {
	// Every listener of the tests stays on 127.0.0.1. controller-runtime's manager (in velero server
	// and node-agent) serves its own metrics on DefaultBindAddress, ":8080" on all interfaces, which no
	// Velero flag sets; with both processes on one machine they would also fight for the port. "0"
	// turns that listener off. Velero's metrics (--metrics-address) are unaffected.
	metricsserver.DefaultBindAddress = "0"

	baseName := filepath.Base(os.Args[0])
	err := velero.NewCommand(baseName).Execute()
	cmd.CheckError(err)
}
