import { listen, type ListenOptions, type RunningServer } from "./http.js";

/** A listen address from `[host]:port`; no host means every interface. */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/** Accepts `:3000`, `3000`, `127.0.0.1:3000`, `[::1]:3000`, `0.0.0.0:3000`. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new Error(`"${text}" is not a listen address like :3000 or 127.0.0.1:3000`);
  const host = match[1]?.replace(/^\[(.*)\]$/, "$1");
  return { host: host === undefined || host === "" ? undefined : host, port };
}

/**
 * The hosts to try binding, in order. No host means every interface, as Go's net.Listen("tcp", ":8085")
 * does for Velero's --metrics-address (net/ipsock.go favoriteAddrFamily: the IPv6 wildcard, which takes
 * IPv4 too, where the kernel has IPv6): "::" first, "0.0.0.0" where IPv6 is missing.
 */
export function bindHosts(address: ListenAddress): string[] {
  return address.host === undefined ? ["::", "0.0.0.0"] : [address.host];
}

/** Listens on the first of bindHosts that the kernel has; a busy port or a bad host still fails. */
export async function listenAt(address: ListenAddress, options: Omit<ListenOptions, "host" | "port">): Promise<RunningServer> {
  const hosts = bindHosts(address);
  for (const [i, host] of hosts.entries()) {
    try {
      return await listen({ ...options, port: address.port, host });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (i === hosts.length - 1 || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw err;
    }
  }
  throw new Error("no host to bind"); // unreachable: bindHosts is never empty
}
