import { lstat, readdir, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../server/logger.js";
import { errnoOf } from "./errors.js";
import type { Layout } from "./layout.js";
import { matches, type MetadataCache } from "./metadata.js";

/** How often a shared-root instance marks its temp folder as alive, and when others may take it. */
export const HEARTBEAT_MS = 60_000;
export const STALE_AFTER_MS = 5 * HEARTBEAT_MS;
/** A metadata record without its data file is only garbage once it is this old (its write may still be publishing). */
export const METADATA_GRACE_MS = 10 * 60_000;

/**
 * Temp files of dead instances are removed at start-up. Each instance writes into its own folder
 * under tmp/. With one writer (the default) every other folder belongs to a dead process; with a
 * shared root (several replicas on NFS) only folders whose heartbeat stopped are taken.
 */
export async function reclaimTemp(layout: Layout, own: string, shared: boolean, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(layout.tmp)) {
    if (name === own) continue;
    const path = join(layout.tmp, name);
    if (shared) {
      const stats = await lstat(path).catch(() => undefined);
      if (!stats || now - stats.mtimeMs < STALE_AFTER_MS) continue;
    }
    await rm(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export function startHeartbeat(dir: string, log: Logger): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    utimes(dir, now, now).catch((err: unknown) => log.warn({ err, dir }, "could not refresh the temp folder heartbeat"));
  }, HEARTBEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Removes metadata records whose data file is gone or is another version: left by a crash between
 * the two steps of a delete or an overwrite, or by concurrent overwrites. Records younger than the
 * grace period are left alone, since their data file may be about to be renamed into place.
 */
export async function sweepMetadata(layout: Layout, cache: MetadataCache, now = Date.now(), graceMs = METADATA_GRACE_MS): Promise<number> {
  let removed = 0;
  for (const bucket of await readdirOrEmpty(layout.meta)) {
    for (const shard of await readdirOrEmpty(join(layout.meta, bucket))) {
      const shardDir = join(layout.meta, bucket, shard);
      for (const name of await readdirOrEmpty(shardDir)) {
        const path = join(shardDir, name);
        const info = await stat(path).catch(() => undefined);
        if (!info || now - info.mtimeMs < graceMs) continue;
        const record = await cache.read(path);
        const data = record ? await lstat(layout.objectPath(bucket, record.key), { bigint: true }).catch(() => undefined) : undefined;
        if (record && data?.isFile() && matches(record, record.key, data)) continue;
        await rm(path, { force: true });
        removed++;
      }
    }
  }
  return removed;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return [];
    throw err;
  }
}
