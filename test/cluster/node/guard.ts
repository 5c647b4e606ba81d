// The egress guard: no packet from a pod may leave the machine, and nothing from outside may reach a pod.
// Installed before anything that can start a pod, removed after everything else (hostChanges.ts orders it).
import type { Family } from "./journal.js";
import { parseIptablesSave } from "./hostChanges.js";
import { BRIDGE, GUARD_CHAIN, POD_CIDR } from "./layout.js";

export const GUARD_CHAINS = [GUARD_CHAIN, `${GUARD_CHAIN}-IN`];
const [forward, input] = GUARD_CHAINS as [string, string];

/**
 * mangle runs before filter, where kube-proxy and CNI put their ACCEPTs, and after nat PREROUTING, so a
 * NodePort or Service packet from outside is judged by the pod address it was DNATed to.
 * FORWARD: a packet may be forwarded only from the bridge to the bridge (pod to pod, hairpin); anything
 * forwarded into or out of it, or from or to the pod range on any other interface, is dropped.
 * INPUT: the pod range's host address (the bridge's) answers only loopback and the bridge.
 */
export function guardScript(family: Family): string {
  const lines = [
    "*mangle",
    `:${forward} - [0:0]`,
    `-A ${forward} -i ${BRIDGE} -o ${BRIDGE} -j RETURN`,
    `-A ${forward} -i ${BRIDGE} -j DROP`,
    `-A ${forward} -o ${BRIDGE} -j DROP`,
  ];
  if (family === "ipv4") {
    lines.push(
      `-A ${forward} -s ${POD_CIDR} -j DROP`,
      `-A ${forward} -d ${POD_CIDR} -j DROP`,
      `:${input} - [0:0]`,
      `-A ${input} -i lo -j RETURN`,
      `-A ${input} -i ${BRIDGE} -j RETURN`,
      `-A ${input} -d ${POD_CIDR} -j DROP`,
      `-I INPUT 1 -j ${input}`,
    );
  }
  lines.push(`-I FORWARD 1 -j ${forward}`, "COMMIT");
  return `${lines.join("\n")}\n`;
}

/** The iptables-restore --noflush input that removes the guard from the current tables ("" if absent). */
export function guardRemovalScript(currentSave: string): string {
  const mangle = parseIptablesSave(currentSave).get("mangle");
  if (!mangle) return "";
  const ours = GUARD_CHAINS.filter((chain) => mangle.chains.has(chain));
  const jumps = mangle.rules.filter((rule) => GUARD_CHAINS.some((chain) => rule.endsWith(` -j ${chain}`)) && !GUARD_CHAINS.includes(rule.split(" ")[1]!));
  if (ours.length === 0 && jumps.length === 0) return "";
  return `${["*mangle", ...jumps.map((rule) => `-D ${rule.slice(3)}`), ...ours.map((c) => `-F ${c}`), ...ours.map((c) => `-X ${c}`), "COMMIT"].join("\n")}\n`;
}

/** True when the current tables hold the guard's jumps (what start() checks before going on). */
export function guardInstalled(currentSave: string, family: Family): boolean {
  const mangle = parseIptablesSave(currentSave).get("mangle");
  const jumps = (chain: string, to: string) => mangle?.rules.some((rule) => rule === `-A ${chain} -j ${to}`) ?? false;
  return jumps("FORWARD", forward) && (family === "ipv6" || jumps("INPUT", input));
}
