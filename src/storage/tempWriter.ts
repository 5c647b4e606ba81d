import type { FileHandle } from "node:fs/promises";
import { Writable } from "node:stream";
import { StorageError } from "./errors.js";
import type { HashSession } from "./hashPool.js";

/** Large enough for few syscalls and worker messages per GiB, small enough that memory stays flat. */
export const STAGING_BUFFER_BYTES = 1024 * 1024;
/** Buffers in flight per upload (being written or hashed); the input pauses when all are busy. */
const STAGING_DEPTH = 4;
/** With durability on, how much written data may wait before a background fdatasync starts. */
const FLUSH_INTERVAL_BYTES = 8 * 1024 * 1024;

/**
 * A Writable that copies an object's bytes into 1 MiB staging buffers, writes each to the temp
 * file at its offset, and then hands it to the hash worker; the worker hands it back for reuse.
 * Disk writes, hashing and reading the next bytes from the client all overlap, and memory is
 * bounded by STAGING_DEPTH buffers whatever the object size.
 */
export class TempObjectWriter extends Writable {
  /** Bytes accepted so far. */
  bytes = 0;
  private readonly free: ArrayBuffer[] = [];
  private readonly waitingForBuffer: Array<() => void> = [];
  private allocated = 0;
  private current: ArrayBuffer | undefined;
  private fill = 0;
  /** File offset of the next buffer to write: buffers are dispatched in stream order. */
  private dispatched = 0;
  /** Buffers reach the hash worker in stream order: each is posted after the previous one's write finished. */
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  /** Buffers at the hash worker. */
  private readonly hashing = new Set<ArrayBuffer>();
  private flushing: Promise<void> | undefined;
  private flushedUpTo = 0;
  private finalWaiter: (() => void) | undefined;

  constructor(
    private readonly file: FileHandle,
    private readonly hashes: HashSession,
    private readonly maxBytes: number,
    private readonly durable = false,
    /** Where in the file the body starts (a multipart part written at its place in the object). */
    private readonly startAt = 0,
  ) {
    super({ highWaterMark: STAGING_BUFFER_BYTES });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.consume(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      if (this.current && this.fill > 0) this.dispatch(this.current, this.fill);
      else if (this.current) this.free.push(this.current);
      this.current = undefined;
      await this.chain;
      await this.drained();
      if (this.failure) throw this.failure;
    })().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // In-flight writes finish on their own; the caller closes and removes the temp file.
    callback(error);
  }

  private async consume(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.bytes + chunk.length > this.maxBytes) {
      throw new StorageError("EntityTooLarge", `the object is larger than the limit of ${this.maxBytes} bytes`);
    }
    this.bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      this.current ??= await this.takeBuffer();
      const room = this.current.byteLength - this.fill;
      const n = Math.min(room, chunk.length - offset);
      new Uint8Array(this.current, this.fill, n).set(chunk.subarray(offset, offset + n));
      this.fill += n;
      offset += n;
      if (this.fill === this.current.byteLength) {
        this.dispatch(this.current, this.fill);
        this.current = undefined;
        this.fill = 0;
      }
      this.rethrow();
    }
  }

  private rethrow(): void {
    if (this.failure) throw this.failure;
  }

  private dispatch(buffer: ArrayBuffer, length: number): void {
    const position = this.dispatched;
    this.dispatched += length;
    const written = writeFully(this.file, new Uint8Array(buffer, 0, length), this.startAt + position);
    // Keep the rejection handled here; it surfaces through the chain.
    written.catch(() => undefined);
    // Buffers go to the worker in stream order as soon as their write is done, without waiting for
    // the previous buffer's hash: the worker queues them, so it never idles on a round trip.
    this.chain = this.chain.then(async () => {
      try {
        await written;
      } catch (err) {
        return this.fail(err);
      }
      if (this.failure) return;
      this.hashing.add(buffer);
      this.hashes.update(buffer, length).then(
        (returned) => {
          this.hashing.delete(buffer);
          this.release(returned);
          this.wakeFinal();
        },
        (err: unknown) => {
          this.hashing.delete(buffer);
          this.fail(err);
          this.wakeFinal();
        },
      );
      this.maybeFlush(position + length);
    });
  }

  private fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    this.wakeAll();
  }

  /**
   * With durability on, start an fdatasync every FLUSH_INTERVAL_BYTES while the body is still
   * arriving, so the disk writes back while later bytes are hashed; the final fdatasync then has
   * little left to do. One at a time.
   */
  private maybeFlush(writtenUpTo: number): void {
    if (!this.durable || this.flushing || writtenUpTo - this.flushedUpTo < FLUSH_INTERVAL_BYTES) return;
    this.flushedUpTo = writtenUpTo;
    this.flushing = this.file
      .datasync()
      .catch((err: unknown) => this.fail(err))
      .finally(() => {
        this.flushing = undefined;
        this.wakeFinal();
      });
  }

  /** Resolves when no hash or flush is outstanding. */
  private async drained(): Promise<void> {
    while (this.hashing.size > 0 || this.flushing) {
      await new Promise<void>((resolve) => (this.finalWaiter = resolve));
    }
  }

  private wakeFinal(): void {
    const wake = this.finalWaiter;
    this.finalWaiter = undefined;
    wake?.();
  }


  private async takeBuffer(): Promise<ArrayBuffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const buffer = this.free.pop();
      if (buffer) return buffer;
      if (this.allocated < STAGING_DEPTH) {
        this.allocated++;
        return new ArrayBuffer(STAGING_BUFFER_BYTES);
      }
      await new Promise<void>((resolve) => this.waitingForBuffer.push(resolve));
    }
  }

  private release(buffer: ArrayBuffer): void {
    this.free.push(buffer);
    this.waitingForBuffer.shift()?.();
  }

  private wakeAll(): void {
    for (const wake of this.waitingForBuffer.splice(0)) wake();
  }
}

/** Writes all of `bytes` at `position`. A short write is not an error by itself (a full disk writes what fits first); the retry then fails with ENOSPC. */
export async function writeFully(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error("the file accepted no bytes"), { code: "EIO" });
    done += bytesWritten;
  }
}
