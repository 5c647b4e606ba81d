// Fixed names and addresses of the real node. Fixed (not per run) on purpose: a run killed with SIGKILL leaves
// host state behind, and the next run must find it by these names to sweep it.
import path from "node:path";

/** Everything the node writes lives here; only the lock and the journal survive a clean teardown. */
export const STATE_DIR = process.env.APP_SNAPSHOTS_NODE_STATE ?? "/var/lib/app-snapshots-node";
export const LOCK_FILE = path.join(STATE_DIR, "lock");
export const JOURNAL_FILE = path.join(STATE_DIR, "journal.jsonl");
/** One run's files (certs, etcd, containerd root/state, kubelet root, logs); removed on teardown. */
export const RUN_DIR = path.join(STATE_DIR, "run");

/** The CNI bridge; created by the harness so route_localnet can be set on it before any pod starts. */
export const BRIDGE = "appsnap0";
/** Pods get addresses here (host-local IPAM); the bridge holds the first. Not routed anywhere. */
export const POD_CIDR = "10.234.0.0/24";
export const BRIDGE_IP = "10.234.0.1";
export const SERVICE_CIDR = "10.235.0.0/24";
/** The `kubernetes` Service's ClusterIP: the first address of SERVICE_CIDR. */
export const KUBERNETES_SERVICE_IP = "10.235.0.1";
/** kubelet's --cgroup-root: pods' cgroups go below it in every hierarchy, so a sweep finds them by name. */
export const CGROUP_ROOT = "app-snapshots-node";
export const NODE_NAME = "localhost";
/** Our own iptables chains: the egress guard (mangle) and the pod-to-apiserver DNAT (nat). */
export const GUARD_CHAIN = "APPSNAP-GUARD";
export const API_DNAT_CHAIN = "APPSNAP-APISERVER";

/** containerd's CRI namespace: kubelet only sees images imported into it. */
export const CRI_NAMESPACE = "k8s.io";

export function runPath(...parts: string[]): string {
  return path.join(RUN_DIR, ...parts);
}

/**
 * Host-wide paths that kubelet, containerd or the controller-manager create even when pointed at private
 * directories (measured: containerd 1.6 keeps shim sockets and fifos in /run/containerd, kubelet its device-plugin
 * socket in /var/lib/kubelet/device-plugins and container log links in /var/log/containers). The journal lists
 * those absent before a run; teardown removes them again. Paths other programs share (/etc/cni, /run/runc,
 * /run/netns: podman and buildah use them too) are left out on purpose: a teardown must never remove what a
 * concurrent program made.
 */
export const HOST_PATHS = [
  "/run/containerd",
  "/var/run/kubernetes",
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/opt/containerd",
  "/etc/kubernetes",
  "/usr/libexec/kubernetes",
];

/**
 * libcni's result cache (hard-coded in containerd 1.6), shared with podman: only the files of our network and of
 * containerd's own loopback network are ours.
 */
export const CNI_CACHE_DIR = "/var/lib/cni";
export const CNI_NETWORK = "app-snapshots-node";
export const CNI_NETWORKS = [CNI_NETWORK, "cni-loopback"];

/**
 * iptables chains and rules that are ours to delete: chains named KUBE-* (kube-proxy, kubelet) or APPSNAP-*
 * (ours), and rules elsewhere that jump to them or name our bridge or ranges. Anything else a concurrent program
 * adds during a run (podman's CNI-*, Docker's DOCKER-*) is left alone.
 */
export function ownChain(chain: string): boolean {
  return chain.startsWith("KUBE-") || chain.startsWith("APPSNAP-");
}

export function ownRule(rule: string): boolean {
  return [BRIDGE, POD_CIDR, SERVICE_CIDR].some((name) => rule.includes(name));
}

/**
 * Sysctls the node's programs rewrite: kubelet's kernel tunables (protectKernelDefaults false), the CNI bridge's
 * ip_forward, br_netfilter's and kube-proxy's knobs. Their old values are journaled and written back.
 */
export const SYSCTLS = [
  "kernel.panic",
  "kernel.panic_on_oops",
  "kernel.keys.root_maxkeys",
  "kernel.keys.root_maxbytes",
  "vm.overcommit_memory",
  "vm.panic_on_oom",
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.forwarding",
  "net.ipv4.conf.all.route_localnet",
  "net.ipv6.conf.all.forwarding",
  "net.bridge.bridge-nf-call-iptables",
  "net.bridge.bridge-nf-call-ip6tables",
  "net.netfilter.nf_conntrack_max",
];
