import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * Decoder for `Content-Encoding: aws-chunked` bodies (the STREAMING-* payload modes of SigV4):
 *
 *   <hex size>[;chunk-signature=<64 hex>]\r\n <size bytes>\r\n ... 0[;chunk-signature=…]\r\n
 *   [<trailer name>:<value>\r\n ...] [x-amz-trailer-signature:<64 hex>\r\n] \r\n
 *
 * It passes only the payload on (storing the framing corrupted every backup of one S3 server,
 * velero#9951), hands each chunk's signature and SHA-256 to `verifyChunk` in signed modes, and
 * collects the trailers for the caller to check. Every malformed or truncated body ends in a
 * ChunkedEncodingError, never in a hang or a partial object: the caller publishes only after the
 * stream finished cleanly.
 */

export type ChunkedErrorCode = "IncompleteBody" | "InvalidChunk" | "SignatureDoesNotMatch" | "InvalidTrailer";

export class ChunkedEncodingError extends Error {
  constructor(
    readonly code: ChunkedErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ChunkedEncodingError";
  }
}

export interface ChunkedDecoderOptions {
  /** Signed modes: called at the end of every chunk (the final empty one included); false fails the body. */
  verifyChunk?: (signature: string, sha256Hex: string) => boolean;
  /** Whether chunk lines must carry `chunk-signature` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]). */
  signed?: boolean;
}

/** A chunk-size line is short: 16 hex digits plus `;chunk-signature=` and 64 hex digits. */
const MAX_LINE_BYTES = 256;
/** Trailers are a few checksums; anything bigger is not a trailer. */
const MAX_TRAILER_BYTES = 4096;
/** No single chunk is bigger than S3's 5 GiB object. */
const MAX_CHUNK_BYTES = 5 * 1024 ** 3;

type State = "size" | "data" | "data-end" | "trailer" | "done";

export class AwsChunkedDecoder extends Transform {
  /** Trailer headers (names lowercase), available once the stream has finished. */
  readonly trailers = new Map<string, string>();
  /** Payload bytes passed on. */
  decodedBytes = 0;
  private state: State = "size";
  private line: Buffer[] = [];
  private lineBytes = 0;
  private trailerBytes = 0;
  private remaining = 0;
  private signature: string | undefined;
  private chunkHash: Hash | undefined;

  constructor(private readonly options: ChunkedDecoderOptions = {}) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    callback(this.state === "done" ? null : new ChunkedEncodingError("IncompleteBody", "the aws-chunked body ended before its final chunk and trailer"));
  }

  private consume(input: Buffer): void {
    let at = 0;
    while (at < input.length) {
      switch (this.state) {
        case "data": {
          const n = Math.min(this.remaining, input.length - at);
          const piece = input.subarray(at, at + n);
          this.chunkHash?.update(piece);
          this.decodedBytes += n;
          this.push(piece);
          this.remaining -= n;
          at += n;
          if (this.remaining === 0) this.state = "data-end";
          break;
        }
        case "size":
        case "data-end":
        case "trailer": {
          const end = this.readLine(input, at);
          if (end < 0) return;
          at = end;
          this.onLine(this.takeLine());
          break;
        }
        case "done":
          throw new ChunkedEncodingError("InvalidChunk", "bytes after the end of the aws-chunked body");
      }
    }
  }

  /** Accumulates up to and including CRLF; returns the index after it, or -1 when the line continues in the next piece. */
  private readLine(input: Buffer, from: number): number {
    const newline = input.indexOf(0x0a, from);
    const end = newline < 0 ? input.length : newline + 1;
    this.line.push(input.subarray(from, end));
    this.lineBytes += end - from;
    const limit = this.state === "trailer" ? MAX_TRAILER_BYTES : MAX_LINE_BYTES;
    if (this.lineBytes > limit) throw new ChunkedEncodingError("InvalidChunk", `an aws-chunked ${this.state === "trailer" ? "trailer" : "chunk header"} line is longer than ${limit} bytes`);
    return newline < 0 ? -1 : end;
  }

  private takeLine(): string {
    const bytes = Buffer.concat(this.line, this.lineBytes);
    this.line = [];
    this.lineBytes = 0;
    if (bytes.length < 2 || bytes[bytes.length - 2] !== 0x0d) throw new ChunkedEncodingError("InvalidChunk", "an aws-chunked line does not end with CRLF");
    return bytes.subarray(0, bytes.length - 2).toString("latin1");
  }

  private onLine(line: string): void {
    if (this.state === "data-end") {
      if (line !== "") throw new ChunkedEncodingError("InvalidChunk", "chunk data is longer than its declared size");
      this.endChunk();
      this.state = "size";
      return;
    }
    if (this.state === "trailer") {
      if (line === "") {
        this.state = "done";
        return;
      }
      this.trailerBytes += line.length + 2;
      if (this.trailerBytes > MAX_TRAILER_BYTES) throw new ChunkedEncodingError("InvalidTrailer", `the trailers are longer than ${MAX_TRAILER_BYTES} bytes`);
      const colon = line.indexOf(":");
      if (colon <= 0) throw new ChunkedEncodingError("InvalidTrailer", `malformed trailer line "${line.slice(0, 60)}"`);
      const name = line.slice(0, colon).trim().toLowerCase();
      if (this.trailers.has(name)) throw new ChunkedEncodingError("InvalidTrailer", `trailer ${name} appears twice`);
      this.trailers.set(name, line.slice(colon + 1).trim());
      return;
    }
    // A chunk header: size in hex, optional extensions.
    const match = /^([0-9a-fA-F]{1,16})((?:;[^;=]+=[^;]*)*)$/.exec(line);
    if (!match) throw new ChunkedEncodingError("InvalidChunk", `malformed aws-chunked chunk header "${line.slice(0, 60)}"`);
    const size = parseInt(match[1]!, 16);
    if (size > MAX_CHUNK_BYTES) throw new ChunkedEncodingError("InvalidChunk", `an aws-chunked chunk of ${size} bytes is larger than 5 GiB`);
    const extensions = new Map((match[2] ?? "").split(";").slice(1).map((pair) => pair.split("=", 2) as [string, string]));
    this.signature = extensions.get("chunk-signature");
    if (this.options.signed) {
      if (!this.signature || !/^[0-9a-f]{64}$/.test(this.signature)) throw new ChunkedEncodingError("SignatureDoesNotMatch", "a chunk of a signed aws-chunked body has no valid chunk-signature");
      this.chunkHash = createHash("sha256");
    }
    if (size === 0) {
      this.endChunk();
      this.state = "trailer";
      return;
    }
    this.remaining = size;
    this.state = "data";
  }

  private endChunk(): void {
    if (!this.options.signed) return;
    const digest = this.chunkHash!.digest("hex");
    this.chunkHash = undefined;
    if (!this.options.verifyChunk?.(this.signature!, digest)) throw new ChunkedEncodingError("SignatureDoesNotMatch", "an aws-chunked chunk signature does not match");
  }
}
