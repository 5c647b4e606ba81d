import { readFile, lstat } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { DATA_FILE, SLOT_PREFIX, type SlotRecord } from "../../../src/s3/partSlots.js";
import { keyDigest } from "../../../src/storage/layout.js";
import { FOLDER_MARKER } from "../../../src/storage/keys.js";
import { until } from "../../cluster/wait.js";
import { storeListing } from "../../s3/inspect.js";

/**
 * No partial write anywhere under `root`: every temp folder is empty, nothing stray is left (files
 * at the top level, orphaned metadata), and every object file, in the buckets and in open multipart
 * uploads, is complete: it has the metadata record of its own inode, and the record's size is the file's.
 * An upload's data file (parts written in place, src/s3/partSlots.ts) has no record of its own: every
 * part recorded in it must lie within it (a record is written only after its bytes).
 */
export async function expectNoPartialWrites(root: string): Promise<void> {
  // Requests may still run after their connections closed (a client that went away, or Node's 400 for bytes
  // pipelined after a request): their temp files, and the record of a version a delete has just unlinked, are
  // then there for a moment. What is still there once the server has been quiet for seconds is left behind.
  const listing = await until("the store's temp folders to empty and no record without its object", async () => {
    const now = await storeListing(root);
    return now.temp.length === 0 && now.strays.length === 0 ? now : undefined;
  }, 10_000, 50).catch(() => storeListing(root));
  expect(listing.temp, "temp files left behind").toEqual([]);
  expect(listing.strays, "stray files").toEqual([]);
  const stores: Array<[string, Record<string, string[]>]> = [
    [root, listing.buckets],
    [join(root, ".app-snapshots", "uploads"), listing.uploads],
  ];
  for (const [storeRoot, buckets] of stores) {
    for (const [bucket, files] of Object.entries(buckets)) {
      const isUpload = storeRoot !== root;
      for (const file of files) {
        if (file.endsWith("/")) continue; // an empty folder
        if (isUpload && file === DATA_FILE) {
          await expectSlotsWithin(storeRoot, bucket, files);
          continue;
        }
        expect(file.endsWith("@"), `a symlink in the store: ${bucket}/${file}`).toBe(false);
        const key = file === FOLDER_MARKER || file.endsWith(`/${FOLDER_MARKER}`) ? file.slice(0, -FOLDER_MARKER.length) : file;
        const stats = await lstat(join(storeRoot, bucket, file), { bigint: true });
        const digest = keyDigest(key);
        const record = join(storeRoot, ".app-snapshots", "meta", bucket, digest.slice(0, 2), `${digest}.${stats.ino}.json`);
        const text = await readFile(record, "utf8").catch(() => undefined);
        expect(text, `object ${bucket}/${file} has no metadata record: a partial write`).toBeDefined();
        expect((JSON.parse(text!) as { size: number }).size, `object ${bucket}/${file}'s size`).toBe(Number(stats.size));
      }
    }
  }
}

/** Every part recorded as written in place in upload `bucket` lies within its data file. */
async function expectSlotsWithin(uploadsRoot: string, upload: string, files: string[]): Promise<void> {
  const stats = await lstat(join(uploadsRoot, upload, DATA_FILE));
  expect(stats.isFile(), `upload ${upload}'s data file is a regular file`).toBe(true);
  for (const file of files.filter((f) => f.startsWith(SLOT_PREFIX))) {
    const slot = JSON.parse(await readFile(join(uploadsRoot, upload, file), "utf8")) as SlotRecord;
    expect(slot.offset + slot.size, `part ${slot.partNumber} of upload ${upload} past its data file's end: recorded before its bytes`).toBeLessThanOrEqual(stats.size);
  }
}
