import { constants, createReadStream } from "node:fs";
import { lstat, open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { Readable as ReadableStream } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StorageError } from "../storage/errors.js";
import type { HashAlgorithm } from "../storage/hashPool.js";
import { OneAtATime } from "../storage/oneAtATime.js";
import type { OpenDir } from "../storage/openDir.js";
import type { ObjectStore, PutOptions, PutResult } from "../storage/store.js";
import { TempObjectWriter } from "../storage/tempWriter.js";

/** The upload's one data file, in its folder of the uploads store (never listed: parts are under part/ and slot/). */
export const DATA_FILE = "assembled.data";
export const SLOT_PREFIX = "slot/";
const slotKey = (n: number) => `${SLOT_PREFIX}${String(n).padStart(5, "0")}`;

/** A part written in place: bytes offset..offset+size-1 of the upload's data file. */
export interface SlotRecord {
  partNumber: number;
  offset: number;
  size: number;
  etag: string;
  lastModified: number;
  checksums: Record<string, string>;
}

/**
 * Multipart parts written at their final place in one file, so that Complete publishes that file
 * (truncate, fsync, rename) instead of copying every byte into a new one. The first part of an
 * upload fixes the slot size; part n of that size (or smaller: the last part) goes to offset
 * (n-1) × slot. Clients send equal parts (kopia through minio-go 16 MiB, the AWS SDKs 5 or 8 MiB),
 * so that is the usual case; any other part is stored as an object of its own and Complete copies.
 *
 * A part's record (slot/NNNNN in the upload's folder, a small durable object) is written only after
 * its bytes are fsynced, and an earlier record of the same part number is removed before its bytes
 * are overwritten: a crash never leaves a record over bytes it does not describe. Writes of one part
 * number run one at a time. Replicas sharing a root (--shared) do not use slots: the slot size and
 * that ordering live in this process.
 *
 * The data file is only ever reached through its upload's folder opened without following links
 * (ObjectStore.inBucketFolder), like everything the store writes: an upload folder swapped for a
 * symbolic link cannot send a part's bytes, a cut or the publish outside the root.
 */
export class PartSlots {
  /** Slot size per upload, fixed by its first part in this process. */
  private readonly slotBytes = new Map<string, number>();
  private readonly writing = new OneAtATime();

  constructor(
    private readonly parts: ObjectStore,
    private readonly enabled: boolean,
  ) {}

  /** Runs `work` on the upload's data file, as an entry of its open upload folder (see the class). */
  private inData<T>(uploadId: string, work: (path: string, dir: OpenDir) => Promise<T>): Promise<T> {
    return this.parts.inBucketFolder(uploadId, (dir) => work(dir.entry(DATA_FILE), dir));
  }

  /** Runs `publish` with the upload's data file as an open folder and a name, for ObjectStore.publishFile. */
  publishData<T>(uploadId: string, publish: (from: { dir: OpenDir; name: string }) => Promise<T>): Promise<T> {
    return this.inData(uploadId, (_path, dir) => publish({ dir, name: DATA_FILE }));
  }

  /** Where part `partNumber` of `size` bytes goes in the data file, or undefined when it must be an object of its own. */
  place(uploadId: string, partNumber: number, size: number | undefined, minPartBytes: number): number | undefined {
    if (!this.enabled || size === undefined || size === 0) return undefined;
    let slot = this.slotBytes.get(uploadId);
    if (slot === undefined) {
      if (size < minPartBytes) return undefined;
      slot = size;
      this.slotBytes.set(uploadId, slot);
    }
    return size <= slot ? (partNumber - 1) * slot : undefined;
  }

  forgetUpload(uploadId: string): void {
    this.slotBytes.delete(uploadId);
  }

  /** Removes part `partNumber`'s record, so its bytes no longer count (before they are overwritten, or replaced by an object). */
  async forget(uploadId: string, partNumber: number): Promise<void> {
    await this.parts.delete(uploadId, slotKey(partNumber));
  }

  /** Writes a part's body at `offset`, hashing it as put() does, then records it. */
  async write(uploadId: string, partNumber: number, offset: number, body: Readable | AsyncIterable<Uint8Array>, options: PutOptions): Promise<PutResult> {
    return this.writing.run(`${uploadId}\0${partNumber}`, () => this.writeNow(uploadId, partNumber, offset, body, options));
  }

  private async writeNow(uploadId: string, partNumber: number, offset: number, body: Readable | AsyncIterable<Uint8Array>, options: PutOptions): Promise<PutResult> {
    await this.forget(uploadId, partNumber);
    const expected = options.expectedSize!;
    const wanted = new Set<HashAlgorithm>(["md5", ...(options.digests ?? [])]);
    const hashes = this.parts.hashPool.session([...wanted]);
    let digests: Partial<Record<HashAlgorithm, Buffer>>;
    try {
      digests = await this.inData(uploadId, async (path) => {
        const file = await open(path, constants.O_CREAT | constants.O_WRONLY | constants.O_NOFOLLOW, 0o644);
        try {
          // At most the announced size: a longer body would run into the next part's slot.
          const writer = new TempObjectWriter(file, hashes, expected, this.parts.durability === "full", offset);
          await pipeline(body, writer);
          const written = await hashes.digest();
          if (writer.bytes !== expected) throw new StorageError("IncompleteBody", `received ${writer.bytes} bytes, expected ${expected}`);
          const md5 = written.md5!;
          if (options.expectedMd5 && !options.expectedMd5.equals(md5)) {
            throw new StorageError("BadDigest", `the body's MD5 ${md5.toString("base64")} does not match Content-MD5 ${options.expectedMd5.toString("base64")}`);
          }
          await options.verify?.({ bytes: writer.bytes, digests: written });
          if (this.parts.durability === "full") await file.datasync();
          return written;
        } finally {
          await file.close();
        }
      });
    } catch (err) {
      hashes.abort();
      throw err;
    }
    const record: SlotRecord = { partNumber, offset, size: expected, etag: digests.md5!.toString("hex"), lastModified: Date.now(), checksums: options.checksums ?? {} };
    const stored = await this.parts.put(uploadId, slotKey(partNumber), ReadableStream.from([Buffer.from(JSON.stringify(record))]), { contentType: "application/json" });
    return { ...stored, size: record.size, etag: record.etag, checksums: record.checksums, contentType: "application/octet-stream", digests };
  }

  /** The upload's recorded slot parts. */
  async records(uploadId: string): Promise<SlotRecord[]> {
    const records: SlotRecord[] = [];
    let token: string | undefined;
    do {
      const page = await this.parts.list(uploadId, { prefix: SLOT_PREFIX, continuationToken: token, maxKeys: 1000 });
      for (const listed of page.objects) {
        const object = await this.parts.open(uploadId, listed.key).catch((err: unknown) => {
          if (err instanceof StorageError && err.code === "NoSuchKey") return undefined;
          throw err;
        });
        if (!object) continue;
        records.push(JSON.parse((await object.read({ start: 0, end: object.info.size - 1 })).toString("utf8")) as SlotRecord);
      }
      token = page.nextContinuationToken;
    } while (token);
    return records;
  }

  /** Whether the upload's data file is there (a Complete that published it moved it away). */
  async hasData(uploadId: string): Promise<boolean> {
    const stats = await this.inData(uploadId, (path) => lstat(path)).catch(() => undefined);
    return stats?.isFile() ?? false;
  }

  /**
   * Cuts the data file to the object's `size` (the last part's slot may be longer); false when the
   * file is missing or shorter, so Complete copies instead. publishFile's fdatasync makes the new length durable.
   */
  async cut(uploadId: string, size: number): Promise<boolean> {
    return this.inData(uploadId, async (path) => {
      const file = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW).catch(() => undefined);
      if (!file) return false;
      try {
        const stats = await file.stat();
        if (!stats.isFile() || stats.size < size) return false;
        if (stats.size > size) await file.truncate(size);
        return true;
      } finally {
        await file.close();
      }
    });
  }

  /** A slot part's bytes, for a Complete that has to copy (the file opened through its upload folder, then read by descriptor). */
  async *stream(uploadId: string, record: { offset: number; size: number }): AsyncGenerator<Buffer> {
    const file = await this.inData(uploadId, (path) => open(path, constants.O_RDONLY | constants.O_NOFOLLOW));
    yield* createReadStream("", { fd: file, autoClose: true, start: record.offset, end: record.offset + record.size - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
  }

  /**
   * Whether the chosen parts are exactly the data file's layout (parts 1..N in their slots, all of
   * the slot size but the last), so the file truncated to their total is the object.
   */
  static inPlace(chosen: ReadonlyArray<{ partNumber: number; size: number; offset?: number }>): boolean {
    const slot = chosen[0]?.size ?? 0;
    return chosen.every((p, i) => p.offset === i * slot && p.partNumber === i + 1 && (p.size === slot || (i === chosen.length - 1 && p.size <= slot)));
  }
}
