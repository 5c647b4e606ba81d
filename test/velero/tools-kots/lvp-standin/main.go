// A stand-in for replicatedhq/local-volume-provider (LVP), used only by the real-node tests (issue 16, B.2 and C):
// LVP's module is not served by the Go module proxy here, so this ObjectStore plugin is written again from LVP's
// documented behaviour (shared/reference/kots-and-lvp.md, sections 4 and 5), not from its code. It keeps what
// Velero and LVP's file-server sidecar see: the provider names, the object layout under the mount, the volume and
// the sidecar it adds to Velero's Deployment and node-agent, and signed URLs for $POD_IP:3000 keyed by Secret
// lvp-signingsecret. Where LVP is careless (math/rand keys, no update check), the stand-in is not.
package main

import (
	"github.com/sirupsen/logrus"
	"github.com/vmware-tanzu/velero/pkg/plugin/framework"
)

// The three ObjectStore plugins LVP registers; they share one implementation and differ in the volume they mount.
var volumeTypes = map[string]string{
	"replicated.com/hostpath": "hostpath",
	"replicated.com/nfs":      "nfs",
	"replicated.com/pvc":      "pvc",
}

func main() {
	server := framework.NewServer()
	for name, kind := range volumeTypes {
		server = server.RegisterObjectStore(name, func(log logrus.FieldLogger) (any, error) {
			return &objectStore{log: log, volumeType: kind}, nil
		})
	}
	server.Serve()
}
