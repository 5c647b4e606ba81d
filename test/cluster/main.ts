// `make control-plane`: etcd and kube-apiserver in the foreground for manual use (no node, no root), until Ctrl-C.
import { startControlPlane } from "./controlPlane.js";
import { installAppSnapshotsCrds, installVeleroCrds } from "./crds.js";
import { toolPath } from "./binaries.js";

const plane = await startControlPlane({ log: (line) => console.error(`[cluster] ${line}`) });
await installVeleroCrds(plane.kubeConfig);
await installAppSnapshotsCrds(plane.kubeConfig);
console.log(`kube-apiserver: ${plane.url}`);
console.log(`kubeconfig:     ${plane.kubeconfigPath}`);
console.log(`try:            ${toolPath("kubectl")} --kubeconfig ${plane.kubeconfigPath} get crds`);
console.log(`                ${toolPath("helm")} --kubeconfig ${plane.kubeconfigPath} list -A`);
console.log("Ctrl-C stops it and removes its files.");

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  console.error("[cluster] stopping");
  plane.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
