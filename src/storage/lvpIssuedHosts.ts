import type { NetworkInterfaceInfo } from "node:os";
import { hostForUrl } from "../server/http.js";
import { LVP_PORT } from "./lvpSignature.js";

/**
 * The host:port values LVP's URLs may name besides the request's Host. LVP's plugin signs for `$POD_IP:3000` of the
 * Velero pod, and its sidecar shares that pod's network, so the sidecar's own addresses are the issued host.
 * `POD_IP` says so when set; the sidecar LVP's plugin declares has only MOUNT_POINT and VELERO_NAMESPACE
 * (kots-and-lvp.md 4.2), so without it every non-loopback address of the pod counts. Without this a URL fetched
 * through a Service or a port-forward (another Host) would not verify.
 */
export function lvpIssuedHosts(podIp: string | undefined, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string[] {
  const addresses = podIp ? [podIp] : Object.values(interfaces).flatMap((infos) => (infos ?? []).filter((info) => !info.internal).map((info) => info.address));
  return [...new Set(addresses)].map((address) => `${hostForUrl(address)}:${LVP_PORT}`);
}
