// The real node's programs: ours built by `make node-tools` (cached by version like kube-apiserver), the
// container runtime and network tools from Debian packages. preflight() says what is missing and why.
import { existsSync } from "node:fs";
import path from "node:path";
import { cacheDir, pinnedVersions } from "../binaries.js";
import { corednsPath } from "./coredns.js";
import { cgroupHierarchies } from "./host.js";

export type NodeTool = "kubelet" | "kube-controller-manager" | "kube-scheduler" | "kube-proxy";
export const NODE_TOOLS: NodeTool[] = ["kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"];

export function nodeToolPath(tool: NodeTool): string {
  return path.join(cacheDir, "bin", `${tool}-${pinnedVersions().KUBERNETES}`);
}

/** Debian bookworm: containerd, runc, containernetworking-plugins, iptables, util-linux, iproute2, tar. */
const HOST_COMMANDS = ["containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip6tables", "iptables-save", "iptables-restore", "ip", "flock", "umount", "tar"];
export const CNI_BIN_DIR = "/usr/lib/cni";
const CNI_PLUGINS = ["bridge", "host-local", "portmap", "loopback"];

function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
  return dirs.some((dir) => dir !== "" && existsSync(path.join(dir, command)));
}

/** Why the real node cannot start here (empty when it can). */
export function preflight(): string[] {
  const reasons: string[] = [];
  if (process.getuid?.() !== 0) reasons.push("not root: containerd, runc, iptables and cgroups need root (run as root, e.g. in CI)");
  const commands = HOST_COMMANDS.filter((command) => !onPath(command));
  if (commands.length > 0) reasons.push(`missing commands: ${commands.join(", ")} (make node-tools installs the Debian packages containerd runc containernetworking-plugins iptables conntrack socat)`);
  const plugins = CNI_PLUGINS.filter((plugin) => !existsSync(path.join(CNI_BIN_DIR, plugin)));
  if (plugins.length > 0) reasons.push(`missing CNI plugins in ${CNI_BIN_DIR}: ${plugins.join(", ")} (Debian package containernetworking-plugins)`);
  let hierarchies: string[] = [];
  try {
    hierarchies = cgroupHierarchies();
  } catch (err) {
    reasons.push(`cannot read mounts: ${(err as Error).message}`);
  }
  const v1 = ["memory", "cpu", "pids", "cpuset"].filter((controller) => !hierarchies.some((h) => path.basename(h).split(",").includes(controller)));
  const v2 = hierarchies.includes("/sys/fs/cgroup");
  if (v1.length > 0 && !v2) reasons.push(`cgroup controllers not mounted: ${v1.join(", ")} (kubelet needs cgroups v1 or v2)`);
  const missing = NODE_TOOLS.map(nodeToolPath).filter((file) => !existsSync(file));
  try {
    corednsPath();
  } catch (err) {
    reasons.push((err as Error).message);
  }
  if (missing.length > 0) reasons.push(`not built: ${missing.join(", ")} (run make node-tools)`);
  return reasons;
}

/** Throws, naming every reason, where the real node cannot run (a suite that needs it fails loudly with this). */
export function requireRealNode(): void {
  const reasons = preflight();
  if (reasons.length > 0) throw new Error(`the real node cannot start here:\n- ${reasons.join("\n- ")}`);
}
