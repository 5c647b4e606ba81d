// The node's own network: the bridge (made before any pod, so route_localnet can be set on it) and the DNAT that
// lets pods reach the loopback-only apiserver at the `kubernetes` Service IP.
import { API_DNAT_CHAIN, BRIDGE, BRIDGE_IP, KUBERNETES_SERVICE_IP, POD_CIDR, SERVICE_CIDR } from "./layout.js";
import { iptablesRestore, linkExists, run, writeSysctl } from "./host.js";

/**
 * nat PREROUTING from the bridge: <kubernetes Service IP>:443 to 127.0.0.1:<apiserver port>. Needs route_localnet
 * on the bridge (the kernel drops packets to 127/8 arriving on other interfaces otherwise). kube-proxy has no
 * rule for that Service (it has no endpoints: --endpoint-reconciler-type=none), so ours decides.
 */
export function apiserverDnatScript(apiserverPort: number): string {
  return [
    "*nat",
    `:${API_DNAT_CHAIN} - [0:0]`,
    `-A ${API_DNAT_CHAIN} -d ${KUBERNETES_SERVICE_IP}/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 127.0.0.1:${apiserverPort}`,
    `-I PREROUTING 1 -i ${BRIDGE} -j ${API_DNAT_CHAIN}`,
    "COMMIT",
    "",
  ].join("\n");
}

/** Refuses to start where our ranges or bridge name are already in use on this host. */
export function networkConflicts(): string[] {
  const conflicts: string[] = [];
  if (linkExists(BRIDGE)) conflicts.push(`a link named ${BRIDGE} exists and no journal of ours explains it`);
  const routes = run("ip", ["-4", "route", "show", "table", "all"]);
  for (const cidr of [POD_CIDR, SERVICE_CIDR]) {
    const prefix = cidr.split(".").slice(0, 3).join(".");
    if (routes.split("\n").some((line) => line.includes(`${prefix}.`))) conflicts.push(`a route already covers ${cidr}`);
  }
  return conflicts;
}

export function createBridge(apiserverPort: number): void {
  run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  run("ip", ["addr", "add", `${BRIDGE_IP}/${POD_CIDR.split("/")[1]}`, "dev", BRIDGE]);
  run("ip", ["link", "set", BRIDGE, "up"]);
  // Per-interface, so it goes with the bridge: nothing to restore.
  writeSysctl(`net.ipv4.conf.${BRIDGE}.route_localnet`, "1");
  iptablesRestore("ipv4", apiserverDnatScript(apiserverPort));
}
