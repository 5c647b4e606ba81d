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
