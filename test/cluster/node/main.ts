// `make cluster-node`: the real single-node cluster in the foreground, until Ctrl-C; then it tears everything
// down and restores the host. A run killed with SIGKILL is swept by the next start.
import { toolPath } from "../binaries.js";
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
console.log(`kube-apiserver: ${node.url}`);
console.log(`kubeconfig:     ${node.kubeconfigPath}`);
console.log(`images:         ${Object.values(node.images).join(" ")}`);
console.log(`logs:           ${node.logDir}`);
console.log(`try:            ${toolPath("kubectl")} --kubeconfig ${node.kubeconfigPath} get nodes,pods -A`);
console.log(`                ${toolPath("kubectl")} --kubeconfig ${node.kubeconfigPath} run bb --image=${node.images.busybox} --image-pull-policy=Never --restart=Never -- sh -c 'echo hello'`);
console.log("Ctrl-C stops it and restores the host.");
// Read by test/node/sweep.test.ts, which drives this program.
console.log(`READY ${JSON.stringify({ kubeconfig: node.kubeconfigPath, images: node.images, timings: node.timings, swept: node.swept, pids: node.pids() })}`);

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
