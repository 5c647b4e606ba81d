// `make cluster`: the real single-node cluster in the foreground, until Ctrl-C; then it tears everything down and
// restores the host. A run killed with SIGKILL is swept by the next start. The archives named as arguments (make
// cluster passes the one `make image` wrote) are imported under their own references, so the chart's defaults pull
// our image from the node's store as from a registry.
import { chownSync, mkdirSync } from "node:fs";
import path from "node:path";
import { repoRoot, toolPath } from "../binaries.js";
import { RUN_DIR } from "./layout.js";
import { startRealNode } from "./realNode.js";

const log = (line: string) => console.error(`[real-node] ${line}`);
// Ctrl-C during start-up: exit, and the exit handler startRealNode installed restores the host (a signal's
// default action would end the process without it).
let starting = true;
const early = () => {
  if (starting) process.exit(130);
};
process.on("SIGINT", early);
process.on("SIGTERM", early);
const node = await startRealNode({ log, imageArchives: process.argv.slice(2) });
starting = false;
const kubectl = `${toolPath("kubectl")} --kubeconfig ${node.kubeconfigPath}`;
console.log(`kube-apiserver: ${node.url}`);
console.log(`kubeconfig:     ${node.kubeconfigPath}`);
console.log(`images:         ${Object.values(node.images).join(" ")}`);
console.log(`logs:           ${node.logDir}`);
console.log(`try:            ${kubectl} get nodes,pods -A`);
console.log(`                ${kubectl} run bb --image=${node.images.busybox} --image-pull-policy=Never --restart=Never -- sh -c 'echo hello'`);
// A folder for the chart's hostPath volume, writable by the image's user (kubelet does not chown hostPath
// volumes); inside the run dir, so the teardown removes it with everything else.
const volume = path.join(RUN_DIR, "storage-volume");
mkdirSync(volume, { recursive: true });
chownSync(volume, 65532, 65532);
console.log(`install:        ${kubectl} create namespace velero   # the chart copies the storage credentials there`);
console.log(`                ${toolPath("helm")} --kubeconfig ${node.kubeconfigPath} install app-snapshots ${path.join(repoRoot, "chart", "app-snapshots")} -n app-snapshots --create-namespace \\`);
console.log("                  --labels velero.io/exclude-from-backup=true \\");
console.log(`                  --set storage.volume.hostPath.path=${volume} --set storage.volume.hostPath.node=localhost --wait`);
console.log("Ctrl-C stops it and restores the host.");
// Read by test/node/sweep.test.ts, which drives this program.
console.log(`READY ${JSON.stringify({ kubeconfig: node.kubeconfigPath, images: node.images, volume, timings: node.timings, swept: node.swept, pids: node.pids() })}`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  const since = Date.now();
  log("stopping");
  node.stop().then(
    (undone) => {
      for (const line of undone) log(`  restored: ${line}`);
      log(`stopped and restored in ${((Date.now() - since) / 1000).toFixed(1)} s`);
      process.exit(0);
    },
    (err: Error) => {
      log(`teardown failed (the next start sweeps again): ${err.message}`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
