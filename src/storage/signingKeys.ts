import { readFile, stat } from "node:fs/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeRequestError, kubeRequest } from "../kube/request.js";

/** LVP's names: Secret `lvp-signingsecret`, data key `SigningKey`, in the Velero namespace. */
export const LVP_SECRET_NAME = "lvp-signingsecret";
export const LVP_SECRET_KEY = "SigningKey";

/** Where URL-signing keys come from. `keys()` is cheap (cached); `refresh()` re-reads now, at most every few seconds. */
export interface SigningKeySource {
  readonly description: string;
  keys(): Promise<Buffer[]>;
  refresh(): Promise<Buffer[]>;
}

/**
 * Caches a loader's keys for `ttlMs`; a forced refresh (after a signature failed, in case the key
 * was rotated or created meanwhile) is allowed once per `minRefreshMs`, so bad requests cannot
 * turn into a flood of reads.
 */
class CachedSource implements SigningKeySource {
  private cached: { keys: Buffer[]; at: number } | undefined;
  private inflight: Promise<Buffer[]> | undefined;

  constructor(
    readonly description: string,
    private readonly load: () => Promise<Buffer[]>,
    private readonly ttlMs: number,
    private readonly minRefreshMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  keys(): Promise<Buffer[]> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return Promise.resolve(this.cached.keys);
    return this.reload();
  }

  refresh(): Promise<Buffer[]> {
    if (this.cached && this.now() - this.cached.at < this.minRefreshMs) return Promise.resolve(this.cached.keys);
    return this.reload();
  }

  private reload(): Promise<Buffer[]> {
    this.inflight ??= this.load()
      .then((keys) => {
        this.cached = { keys, at: this.now() };
        return keys;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}

/** The raw key bytes of a file, as a mounted Secret provides them (no trimming); re-read when it changes. */
export function keyFromFile(path: string): SigningKeySource {
  let last: { mtimeMs: number; size: number; key: Buffer } | undefined;
  return new CachedSource(
    `file ${path}`,
    async () => {
      const info = await stat(path);
      if (!last || last.mtimeMs !== info.mtimeMs || last.size !== info.size) last = { mtimeMs: info.mtimeMs, size: info.size, key: await readFile(path) };
      if (last.key.length === 0) throw new Error(`signing key file ${path} is empty`);
      return [last.key];
    },
    2_000,
    1_000,
  );
}

/** A base64 key from an environment variable (env values cannot carry arbitrary bytes). */
export function keyFromEnv(name: string, value: string): SigningKeySource {
  const key = Buffer.from(value, "base64");
  if (key.length === 0) throw new Error(`${name} must hold the signing key in base64`);
  const keys = [key];
  return { description: `environment variable ${name}`, keys: () => Promise.resolve(keys), refresh: () => Promise.resolve(keys) };
}

/**
 * The key LVP's plugin keeps in a Secret. A missing Secret means "no key yet" (LVP's plugin
 * creates it when it signs its first URL), not an error; this reader never creates it, so it needs
 * only `get` on that one Secret.
 */
export function keyFromSecret(kc: KubeConfig, namespace: string, timing: { ttlMs?: number; minRefreshMs?: number } = {}): SigningKeySource {
  const name = LVP_SECRET_NAME;
  const field = LVP_SECRET_KEY;
  return new CachedSource(
    `Secret ${namespace}/${name} (key ${field})`,
    async () => {
      try {
        const { body } = await kubeRequest(kc, "GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`);
        const value = (body as { data?: Record<string, string> } | undefined)?.data?.[field];
        return value ? [Buffer.from(value, "base64")] : [];
      } catch (err) {
        if (err instanceof KubeRequestError && err.status === 404) return [];
        throw err;
      }
    },
    timing.ttlMs ?? 60_000,
    timing.minRefreshMs,
  );
}
