import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Durability } from "../storage/store.js";
import type { ChecksumType } from "./multipartChecksums.js";

/** What Complete answered, to answer a retry of it the same way. */
export interface CompletedUpload {
  bucket: string;
  key: string;
  /** The object's ETag (multipart form, "-N"). */
  etag: string;
  size: number;
  lastModified: number;
  checksums: Record<string, string>;
  checksumType?: ChecksumType;
  /** SHA-256 of the part list the Complete named (see partsDigest). */
  partsDigest: string;
}

/** In memory at most this many (a few hundred bytes each); older ones are still found on disk. */
const MEMORY_ENTRIES = 10_000;
/** How long a completion is remembered on disk: SDK retries come within minutes, concurrent Completes at once. */
export const COMPLETED_RETENTION_MS = 60 * 60 * 1000;

/** The part list as Complete named it, normalised: numbers and bare lowercase ETags. */
export function partsDigest(parts: ReadonlyArray<{ partNumber: number; etag: string }>): string {
  const hash = createHash("sha256");
  for (const { partNumber, etag } of parts) hash.update(`${partNumber}:${etag.trim().replace(/^"|"$/g, "").toLowerCase()}\n`);
  return hash.digest("hex");
}

/**
 * Finished multipart uploads (upload id → key, ETag, part list), so that a retried or concurrent
 * CompleteMultipartUpload gets the first one's answer instead of NoSuchUpload. S3
 * CompleteMultipartUpload: "if a retry of a completed upload arrives, S3 returns 200 with the same
 * ETag". Each is a small JSON file written and fsynced before the upload's parts are removed, so a
 * restart in between forgets nothing; the newest are also kept in memory, bounded.
 */
export class CompletedUploads {
  private readonly memory = new Map<string, CompletedUpload>();

  constructor(
    private readonly dir: string,
    private readonly durability: Durability,
  ) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async get(uploadId: string): Promise<CompletedUpload | undefined> {
    const cached = this.memory.get(uploadId);
    if (cached) return cached;
    try {
      const found = JSON.parse(await readFile(this.file(uploadId), "utf8")) as CompletedUpload;
      this.remember(uploadId, found);
      return found;
    } catch {
      return undefined;
    }
  }

  /** Records a completion durably (temp file, fsync, rename, fsync the folder). */
  async add(uploadId: string, completed: CompletedUpload): Promise<void> {
    const temp = join(this.dir, `.${uploadId}.${randomBytes(4).toString("hex")}.tmp`);
    try {
      const file = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      try {
        await file.writeFile(JSON.stringify(completed));
        if (this.durability === "full") await file.datasync();
      } finally {
        await file.close();
      }
      await rename(temp, this.file(uploadId));
      if (this.durability === "full") {
        const folder = await open(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          await folder.sync();
        } finally {
          await folder.close();
        }
      }
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    this.remember(uploadId, completed);
  }

  /** Forgets completions (and temp files) older than `maxAgeMs`. */
  async expire(maxAgeMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const path = join(this.dir, name);
      const stats = await stat(path).catch(() => undefined);
      if (!stats || now - stats.mtimeMs < maxAgeMs) continue;
      await rm(path, { force: true });
      if (name.endsWith(".json")) this.memory.delete(name.slice(0, -5));
      removed++;
    }
    return removed;
  }

  private remember(uploadId: string, completed: CompletedUpload): void {
    this.memory.delete(uploadId);
    if (this.memory.size >= MEMORY_ENTRIES) this.memory.delete(this.memory.keys().next().value as string);
    this.memory.set(uploadId, completed);
  }

  private file(uploadId: string): string {
    return join(this.dir, `${uploadId}.json`);
  }
}
