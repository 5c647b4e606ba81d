import type { BigIntStats, Dirent } from "node:fs";
import { lstatSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { errnoOf, StorageError } from "./errors.js";
import { FOLDER_MARKER, keyProblem } from "./keys.js";

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  /** S3 StartAfter / v1 Marker: only keys after this one. */
  startAfter?: string;
  /** From a previous result's `nextContinuationToken`. */
  continuationToken?: string;
  /** Objects plus common prefixes per page (S3 default and cap: 1000). */
  maxKeys?: number;
}

/** Looks up an object's ETag by the identity of the file just listed (one small record read, cached). */
export type DescribeObject = (key: string, stats: BigIntStats) => Promise<string | undefined>;

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
  /** The ETag from the object's metadata record, when the store wrote it (see ListOptions.describe). */
  etag?: string;
}

export interface ListResult {
  objects: ListedObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextContinuationToken?: string;
}

type Item = { kind: "object"; key: Buffer } | { kind: "prefix"; prefix: Buffer };

const SLASH = Buffer.from("/");
const MARKER = Buffer.from(FOLDER_MARKER);
/** Greater than any byte of valid UTF-8, so `P + 0xff` sorts after every key that starts with P. */
const AFTER_ALL = Buffer.from([0xff]);
const LOST_AND_FOUND = "lost+found";
const NFS_SILLY_RENAME = /^\.nfs[0-9a-f]{16,}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

interface Walk {
  bucketDir: string;
  prefix: Buffer;
  delimiter: Buffer | undefined;
  /** Exclusive lower bound on keys (bytes), from StartAfter and the continuation token. */
  after: Buffer;
  lastPrefix: Buffer | undefined;
}

/**
 * S3 listing over a directory tree, in UTF-8 byte order, without reading object contents. The bound
 * (StartAfter, Marker, KeyMarker, a continuation token) applies to what is listed: keys after it, and
 * common prefixes after it. A v1 client continues from NextMarker, which is the page's last key or
 * prefix; were a prefix equal to the marker (or holding it) listed again, every page would repeat it
 * and with max-keys=1 the listing would never end. S3 never repeats a CommonPrefix across pages. Names are read
 * as bytes and each directory is sorted by `name + "/"` for subdirectories, which is exactly the
 * byte order of the keys below it; so a depth-first walk yields keys in order and whole subtrees
 * can be skipped by prefix and by the lower bound. With delimiter "/" a directory is one common
 * prefix and is never descended (one existence probe instead).
 */
export async function listObjects(bucketDir: string, options: ListOptions, describe?: DescribeObject): Promise<ListResult> {
  const maxKeys = Math.max(0, Math.min(options.maxKeys ?? 1000, 1000));
  const startAfter = Buffer.from(options.startAfter ?? "");
  const token = options.continuationToken === undefined ? Buffer.alloc(0) : decodeToken(options.continuationToken);
  const walk: Walk = {
    bucketDir,
    prefix: Buffer.from(options.prefix ?? ""),
    delimiter: options.delimiter ? Buffer.from(options.delimiter) : undefined,
    after: Buffer.compare(startAfter, token) >= 0 ? startAfter : token,
    lastPrefix: undefined,
  };
  const items: Item[] = [];
  let isTruncated = false;
  if (maxKeys > 0) {
    for await (const item of walkDir(walk, Buffer.alloc(0))) {
      if (items.length === maxKeys) {
        isTruncated = true;
        break;
      }
      items.push(item);
    }
  }
  const last = items.at(-1);
  const objects = await statObjects(
    bucketDir,
    items.flatMap((i) => (i.kind === "object" ? [i.key.toString()] : [])),
    describe,
  );
  return {
    objects,
    commonPrefixes: items.flatMap((i) => (i.kind === "prefix" ? [i.prefix.toString()] : [])),
    isTruncated,
    ...(isTruncated && last ? { nextContinuationToken: encodeToken(last.kind === "prefix" ? Buffer.concat([last.prefix, AFTER_ALL]) : last.key) } : {}),
  };
}

export function encodeToken(bound: Buffer): string {
  return bound.toString("base64url");
}

function decodeToken(token: string): Buffer {
  const bytes = Buffer.from(token, "base64url");
  if (bytes.toString("base64url") !== token) throw new StorageError("InvalidArgument", "the continuation token is not one this store issued");
  return bytes;
}

async function* walkDir(walk: Walk, dir: Buffer): AsyncGenerator<Item> {
  for (const entry of await sortedEntries(walk.bucketDir, dir)) {
    const full = Buffer.concat(entry.isDirectory ? [dir, entry.name, SLASH] : [dir, entry.name]);
    if (entry.isDirectory) {
      if (dir.length === 0 && entry.name.toString() === LOST_AND_FOUND) continue;
      const inside = startsWith(full, walk.prefix);
      if (!inside && !startsWith(walk.prefix, full)) continue;
      // Every key below starts with `full`; if the bound is past all of them, skip the subtree.
      if (Buffer.compare(walk.after, full) > 0 && !startsWith(walk.after, full)) continue;
      if (inside && walk.delimiter?.equals(SLASH) && full.indexOf(SLASH, walk.prefix.length) === full.length - 1) {
        // A common prefix at or before the bound was listed already (it was the marker, or held it).
        if (Buffer.compare(full, walk.after) > 0 && (await hasObjectAfter(walk, full))) yield { kind: "prefix", prefix: full };
        continue;
      }
      yield* walkDir(walk, full);
    } else {
      // A folder marker is the key of its folder ("a/b/"), which sorts before everything in it (sortedEntries).
      const key = entry.isMarker ? dir : full;
      if (entry.isMarker && dir.length === 0) continue;
      if (!startsWith(key, walk.prefix) || Buffer.compare(key, walk.after) <= 0) continue;
      let text: string;
      try {
        text = utf8.decode(key);
      } catch {
        continue; // a file name that is not UTF-8 cannot be an S3 key
      }
      if (keyProblem(text) !== undefined) continue;
      const at = walk.delimiter ? key.indexOf(walk.delimiter, walk.prefix.length) : -1;
      if (walk.delimiter && at >= 0) {
        const prefix = key.subarray(0, at + walk.delimiter.length);
        if (walk.lastPrefix?.equals(prefix) || Buffer.compare(prefix, walk.after) <= 0) continue;
        walk.lastPrefix = prefix;
        yield { kind: "prefix", prefix };
      } else {
        yield { kind: "object", key };
      }
    }
  }
}

/** Whether directory `dir` holds any object after the bound (empty directories are not prefixes). */
async function hasObjectAfter(walk: Walk, dir: Buffer): Promise<boolean> {
  const probe: Walk = { ...walk, prefix: dir, delimiter: undefined, lastPrefix: undefined };
  for await (const item of walkDir(probe, dir)) {
    void item;
    return true;
  }
  return false;
}

interface Entry {
  name: Buffer;
  isDirectory: boolean;
  /** The folder's own marker file: listed as the folder's key, first. */
  isMarker: boolean;
  sortKey: Buffer;
}

async function sortedEntries(bucketDir: string, dir: Buffer): Promise<Entry[]> {
  let dirents: Dirent<Buffer>[];
  try {
    // Paths as bytes: names are compared and rebuilt as bytes, never re-encoded.
    dirents = await readdir(Buffer.concat([Buffer.from(`${bucketDir}/`), dir]), { withFileTypes: true, encoding: "buffer" });
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
  const entries: Entry[] = [];
  for (const d of dirents) {
    // Symlinks and special files are never objects: the store does not follow links.
    // NFS "silly renames" of files deleted while open: transient, never objects.
    if (NFS_SILLY_RENAME.test(d.name.toString("latin1"))) continue;
    if (d.isDirectory()) entries.push({ name: d.name, isDirectory: true, isMarker: false, sortKey: Buffer.concat([d.name, SLASH]) });
    else if (d.isFile()) {
      const isMarker = d.name.equals(MARKER);
      entries.push({ name: d.name, isDirectory: false, isMarker, sortKey: isMarker ? Buffer.alloc(0) : d.name });
    }
  }
  return entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
}

/**
 * Size, mtime and ETag of each listed key. The lstat calls are synchronous: the directory was just
 * read, so its entries are in the kernel's cache and each call takes microseconds, where a round trip
 * through libuv's thread pool costs tens of them on the event loop (a page lists up to 1,000 keys).
 */
async function statObjects(bucketDir: string, keys: string[], describe: DescribeObject | undefined): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for (const key of keys) {
    let stats: BigIntStats | undefined;
    try {
      stats = lstatSync(key.endsWith("/") ? join(bucketDir, key, FOLDER_MARKER) : join(bucketDir, key), { bigint: true, throwIfNoEntry: false });
    } catch (err) {
      // Its folder was removed since the directory was read (ENOTDIR): left out, as a listing a moment later would.
      if (errnoOf(err) !== "ENOTDIR") throw err;
    }
    // Deleted since the directory was read: left out too.
    if (!stats?.isFile()) continue;
    const etag = await describe?.(key, stats);
    out.push({ key, size: Number(stats.size), lastModified: stats.mtime, ...(etag === undefined ? {} : { etag }) });
  }
  return out;
}

function startsWith(buffer: Buffer, prefix: Buffer): boolean {
  return buffer.length >= prefix.length && buffer.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}
