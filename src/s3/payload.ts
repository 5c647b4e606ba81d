import { pipeline } from "node:stream";
import type { Readable } from "node:stream";
import type { HashAlgorithm } from "../storage/hashPool.js";
import type { PutOptions } from "../storage/store.js";
import { AwsChunkedDecoder } from "./awsChunked.js";
import { S3Error } from "./errors.js";
import { ChunkSignatureChain, type AuthContext, UNSIGNED_PAYLOAD } from "./sigv4.js";

/** The S3 checksum algorithms, by the suffix of their `x-amz-checksum-*` header. */
export const CHECKSUM_ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const satisfies readonly HashAlgorithm[];
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

/** The `x-amz-content-sha256` modes. */
type PayloadMode = "sha256" | "unsigned" | "signed-chunks" | "signed-chunks-trailer" | "unsigned-trailer";

const STREAMING_MODES: Record<string, PayloadMode> = {
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": "signed-chunks",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": "signed-chunks-trailer",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER": "unsigned-trailer",
};

export interface IncomingBody {
  /** The payload as it must be stored: aws-chunked framing removed. */
  body: Readable;
  /** What the store must compute and check before publishing. */
  options: Pick<PutOptions, "digests" | "verify" | "expectedSize" | "expectedMd5" | "checksums">;
  /** Content-Encoding to record: the request's, without the `aws-chunked` token. */
  contentEncoding: string | undefined;
}

export interface BodyRequest {
  header: (name: string) => string | undefined;
  stream: Readable;
}

/**
 * Turns a request body into what the store writes, for all five SigV4 payload modes: a hex
 * SHA-256 (checked), UNSIGNED-PAYLOAD, signed aws-chunked (every chunk signature checked; detected
 * by the header value alone, because minio-go before v7.3 sends no Content-Encoding), and the two
 * trailer modes (the trailer checksum checked). Content-MD5 and any `x-amz-checksum-*` are checked
 * too. Every check runs before the object is published, so a failed one stores nothing.
 */
export function incomingBody(request: BodyRequest, auth: AuthContext, maxBytes: number, fallbackAlgorithm?: ChecksumAlgorithm): IncomingBody {
  const header = request.header;
  const declared = header("x-amz-content-sha256");
  let mode: PayloadMode;
  if (declared === undefined) {
    if (!auth.presigned) throw new S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    mode = "unsigned";
  } else if (declared === UNSIGNED_PAYLOAD) mode = "unsigned";
  else if (/^[0-9a-f]{64}$/.test(declared)) mode = "sha256";
  else if (STREAMING_MODES[declared]) mode = STREAMING_MODES[declared];
  else if (declared.startsWith("STREAMING-AWS4-ECDSA")) throw new S3Error("NotImplemented", "SigV4a streaming payloads are not supported");
  else throw new S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… mode, or the hex SHA-256 of the payload");
  if ((mode === "signed-chunks" || mode === "signed-chunks-trailer") && auth.presigned) {
    throw new S3Error("InvalidRequest", "a presigned request cannot carry a signed aws-chunked body");
  }
  const chunked = mode === "signed-chunks" || mode === "signed-chunks-trailer" || mode === "unsigned-trailer";

  const expectedSize = declaredSize(header, chunked, maxBytes);
  const expectedMd5 = contentMd5(header("content-md5"));
  const checksum = declaredChecksum(header, mode === "signed-chunks-trailer" || mode === "unsigned-trailer") ?? (fallbackAlgorithm ? { algorithm: fallbackAlgorithm, source: "requested" as const } : undefined);
  const digests = new Set<HashAlgorithm>();
  if (mode === "sha256") digests.add("sha256");
  if (checksum) digests.add(checksum.algorithm);

  let body: Readable = request.stream;
  let decoder: AwsChunkedDecoder | undefined;
  let chain: ChunkSignatureChain | undefined;
  if (chunked) {
    chain = mode === "unsigned-trailer" ? undefined : new ChunkSignatureChain(auth);
    decoder = new AwsChunkedDecoder({ signed: chain !== undefined, verifyChunk: chain?.verifyChunk });
    // Errors of the request stream (client gone) reach the store through the decoder.
    pipeline(request.stream, decoder, () => undefined);
    body = decoder;
  }

  const checksums: Record<string, string> = {};
  const verify: PutOptions["verify"] = ({ digests: computed }) => {
    if (mode === "sha256" && computed.sha256?.toString("hex") !== declared) {
      throw new S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    if (mode === "signed-chunks-trailer" && !chain!.verifyTrailer(decoder!.trailers)) {
      throw new S3Error("SignatureDoesNotMatch", "the trailer signature (x-amz-trailer-signature) is missing or does not match");
    }
    if (!checksum) return;
    const value = checksum.source === "header" ? checksum.value : checksum.source === "trailer" ? trailerChecksum(decoder!, checksum.algorithm) : undefined;
    const actual = computed[checksum.algorithm]!.toString("base64");
    if (value !== undefined && value !== actual) {
      throw new S3Error("BadDigest", `The ${checksum.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
    }
    checksums[checksum.algorithm] = actual;
  };

  const encoding = header("content-encoding")
    ?.split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "" && token.toLowerCase() !== "aws-chunked")
    .join(", ");
  return {
    body,
    options: { digests: [...digests], verify, expectedSize, expectedMd5, checksums },
    contentEncoding: encoding === "" ? undefined : encoding,
  };
}

function declaredSize(header: (name: string) => string | undefined, chunked: boolean, maxBytes: number): number | undefined {
  const name = chunked ? "x-amz-decoded-content-length" : "content-length";
  const text = header(name);
  if (text === undefined) {
    if (chunked) throw new S3Error("MissingContentLength", "an aws-chunked body needs x-amz-decoded-content-length");
    return undefined;
  }
  if (!/^\d{1,16}$/.test(text)) throw new S3Error("InvalidArgument", `${name} must be a number of bytes`);
  const size = Number(text);
  if (size > maxBytes) throw new S3Error("EntityTooLarge", `the object (${size} bytes) is larger than the limit of ${maxBytes} bytes for one upload`);
  return size;
}

function contentMd5(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== 16 || bytes.toString("base64") !== text.trim()) throw new S3Error("InvalidDigest", "Content-MD5 must be the base64 of 16 bytes");
  return bytes;
}

interface DeclaredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Where the client's value is: a header (`value`), the trailer, or nowhere (only requested: computed and stored). */
  source: "header" | "trailer" | "requested";
  value?: string;
}

/** The one checksum a request declares: `x-amz-checksum-<alg>` header, `x-amz-trailer`, or `x-amz-sdk-checksum-algorithm`. */
function declaredChecksum(header: (name: string) => string | undefined, trailerMode: boolean): DeclaredChecksum | undefined {
  const present = CHECKSUM_ALGORITHMS.filter((a) => header(`x-amz-checksum-${a}`) !== undefined);
  if (present.length > 1) throw new S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  const trailer = header("x-amz-trailer")?.trim().toLowerCase();
  if (trailer !== undefined && !trailerMode) throw new S3Error("InvalidRequest", "x-amz-trailer needs a STREAMING-…-TRAILER x-amz-content-sha256");
  if (trailer !== undefined) {
    if (present.length > 0) throw new S3Error("InvalidRequest", "a checksum may come in a header or in the trailer, not both");
    const algorithm = CHECKSUM_ALGORITHMS.find((a) => trailer === `x-amz-checksum-${a}`);
    if (!algorithm) throw new S3Error("InvalidRequest", `unsupported trailer "${trailer.slice(0, 60)}": expected x-amz-checksum-{${CHECKSUM_ALGORITHMS.join(",")}}`);
    return { algorithm, source: "trailer" };
  }
  if (present.length === 1) {
    const algorithm = present[0]!;
    const value = header(`x-amz-checksum-${algorithm}`)!.trim();
    if (Buffer.from(value, "base64").length !== DIGEST_BYTES[algorithm] || Buffer.from(value, "base64").toString("base64") !== value) {
      throw new S3Error("InvalidRequest", `Value for x-amz-checksum-${algorithm} header is invalid.`);
    }
    return { algorithm, source: "header", value };
  }
  const requested = (header("x-amz-sdk-checksum-algorithm") ?? header("x-amz-checksum-algorithm"))?.trim().toLowerCase();
  if (requested === undefined || requested === "") return undefined;
  const algorithm = CHECKSUM_ALGORITHMS.find((a) => a === requested);
  if (!algorithm) throw new S3Error("InvalidRequest", `unsupported checksum algorithm "${requested.slice(0, 20)}"`);
  return { algorithm, source: "requested" };
}

function trailerChecksum(decoder: AwsChunkedDecoder, algorithm: ChecksumAlgorithm): string | undefined {
  const value = decoder.trailers.get(`x-amz-checksum-${algorithm}`);
  if (value === undefined) throw new S3Error("InvalidRequest", `the trailer x-amz-checksum-${algorithm} announced in x-amz-trailer did not arrive`);
  return value;
}
