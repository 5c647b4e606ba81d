import { readFile } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { errnoOf } from "./errors.js";
import type { Layout } from "./layout.js";

/** What the store records per object besides its bytes. */
export interface ObjectMetadata {
  contentType: string;
  /** Content-Encoding the client declared (e.g. gzip), without aws-chunked. */
  contentEncoding?: string;
  /** S3 user metadata (x-amz-meta-*), names lowercase. */
  userMetadata: Record<string, string>;
  /** Checksums a client sent (algorithm → base64), kept to return them on request. */
  checksums: Record<string, string>;
  /** Whether `checksums` describe the whole body or, for multipart objects, the parts ("<base64>-N"). */
  checksumType?: "FULL_OBJECT" | "COMPOSITE";
  /** Cache-Control, Content-Disposition, Content-Language, Expires as the client sent them (lowercase names). */
  contentHeaders?: Record<string, string>;
  /** A multipart object's part sizes in order (GET ?partNumber=N); absent for single-part objects. */
  partSizes?: number[];
}

/** The metadata file: the object's metadata plus the identity of the data file it belongs to. */
export interface MetadataRecord extends ObjectMetadata {
  v: 1;
  key: string;
  size: number;
  /**
   * The S3 ETag without quotes: hex MD5 of the body, or for a multipart upload the MD5 of the part MD5s
   * plus "-N". On disk it keeps its v1 name `md5`, so records in existing stores read as they are and
   * an older release (a rollback) still reads records written now; the store maps it to `etag`.
   */
  md5: string;
  /** Epoch ms when the write completed. */
  lastModified: number;
  /** Identity of the data file: inode, size and mtime (as set by the store) must all match. */
  ino: string;
  mtimeNs: string;
}

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function matches(record: MetadataRecord, key: string, stats: BigIntStats): boolean {
  return record.key === key && record.ino === stats.ino.toString() && BigInt(record.size) === stats.size && record.mtimeNs === stats.mtimeNs.toString();
}

function isRecord(value: unknown): value is MetadataRecord {
  const r = value as Partial<MetadataRecord> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    r.v === 1 &&
    typeof r.key === "string" &&
    typeof r.size === "number" &&
    typeof r.md5 === "string" &&
    typeof r.lastModified === "number" &&
    typeof r.ino === "string" &&
    typeof r.mtimeNs === "string" &&
    typeof r.contentType === "string" &&
    typeof r.userMetadata === "object" &&
    typeof r.checksums === "object"
  );
}

/**
 * Metadata records are immutable once written (a new version of an object gets a new inode and a
 * new record), so they can be cached by identity without invalidation.
 */
export class MetadataCache {
  private readonly entries = new Map<string, MetadataRecord | null>();

  constructor(
    private readonly layout: Layout,
    private readonly limit = 10_000,
  ) {}

  /** The record for the data file with these stats, or undefined (a file the store did not write). */
  async lookup(bucket: string, key: string, stats: BigIntStats): Promise<MetadataRecord | undefined> {
    const id = `${bucket}\0${key}\0${stats.ino}\0${stats.size}\0${stats.mtimeNs}`;
    const cached = this.entries.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.read(this.layout.metaFile(bucket, key, stats.ino.toString()));
    const found = record && matches(record, key, stats) ? record : undefined;
    // Misses are not cached: the record of a file being published can appear a moment later.
    if (found) {
      if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(id, found);
    }
    return found;
  }

  async read(path: string): Promise<MetadataRecord | undefined> {
    try {
      const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
      return isRecord(parsed) ? parsed : undefined;
    } catch (err) {
      if (errnoOf(err) === "ENOENT" || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }
}
