import { lstat, readdir, rm, utimes } from "node:fs/promises";
import type { Logger } from "../server/logger.js";
import { errnoOf } from "./errors.js";
import { INTERNAL_DIR, type Layout } from "./layout.js";
import { matches, type MetadataCache } from "./metadata.js";
import { type DirChain, OpenDir, openChain, removeTree } from "./openDir.js";

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
  await inInternal(layout, "tmp", async (tmp) => {
    for (const name of await readdir(tmp.entry("."))) {
      if (name === own) continue;
      if (shared) {
        const stats = await lstat(tmp.entry(name)).catch(() => undefined);
        if (!stats || now - stats.mtimeMs < STALE_AFTER_MS) continue;
      }
      await removeTree(tmp, name);
      removed.push(name);
    }
  });
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
  await inInternal(layout, "meta", async (meta) => {
    for (const bucket of await readdir(meta.entry("."))) {
      for (const shard of await readdirOrEmpty(meta, bucket)) {
        // Each shard through its open parents (see openDir.ts): a folder swapped for a link is skipped, never followed.
        const folder = openOrSkip(meta, [bucket, shard]);
        if (!folder) continue;
        try {
          for (const name of await readdir(folder.last.entry("."))) {
            const path = folder.last.entry(name);
            const info = await lstat(path).catch(() => undefined);
            if (!info?.isFile() || now - info.mtimeMs < graceMs) continue;
            const record = await cache.read(path);
            const data = record ? await lstat(layout.objectPath(bucket, record.key), { bigint: true }).catch(() => undefined) : undefined;
            if (record && data?.isFile() && matches(record, record.key, data)) continue;
            await rm(path, { force: true });
            removed++;
          }
        } finally {
          folder.close();
        }
      }
    }
  });
  return removed;
}

/** Runs `work` on the store's internal folder `name`, opened from the root without following links; nothing when it is not there. */
async function inInternal(layout: Layout, name: string, work: (dir: OpenDir) => Promise<void>): Promise<void> {
  const root = OpenDir.open(layout.root);
  try {
    const folder = openOrSkip(root, [INTERNAL_DIR, name]);
    if (!folder) return;
    try {
      await work(folder.last);
    } finally {
      folder.close();
    }
  } finally {
    root.close();
  }
}

/** The folders `segments` below `base`, or undefined when one is missing, a link or a file. */
function openOrSkip(base: OpenDir, segments: string[]): DirChain | undefined {
  try {
    return openChain(base, segments);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

async function readdirOrEmpty(base: OpenDir, name: string): Promise<string[]> {
  const folder = openOrSkip(base, [name]);
  if (!folder) return [];
  try {
    return await readdir(folder.last.entry("."));
  } finally {
    folder.close();
  }
}
