import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { ACCESS_KEY, SECRET_KEY } from "./harness.js";

/**
 * A test client that builds S3 requests byte by byte, signed with the AWS SDK's own signer
 * (@smithy/signature-v4), so tests can send what no npm client sends: minio-go's signed 64 KiB
 * aws-chunked uploads, trailers, and every kind of broken request. Independent of the server's
 * verifier: seed and chunk signatures come from smithy (its event signer computes exactly the S3
 * chunk string-to-sign), never from src/s3.
 */

export const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
const Sha256 = Hash.bind(null, "sha256");

export interface RawRequest {
  method: string;
  /** Path and query exactly as sent, e.g. `/bkt/a%20b?x-id=PutObject`. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer | Buffer[];
}

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The S3 error code of an XML error body. */
  code?: string;
}

export interface SignOptions {
  accessKey?: string;
  secretKey?: string;
  region?: string;
  date?: Date;
  /** The x-amz-content-sha256 value; default: hex SHA-256 of the body. */
  payloadHash?: string;
  /** Header names to leave out of the signature (default: sign every header but user-agent). */
  unsigned?: string[];
}

export function signer(secretKey = SECRET_KEY, accessKey = ACCESS_KEY): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId: accessKey, secretAccessKey: secretKey }, region: "us-east-1", service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: false });
}

function splitTarget(target: string): { path: string; query: Record<string, string | string[]> } {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query: Record<string, string | string[]> = {};
  for (const part of q < 0 ? [] : target.slice(q + 1).split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
    const existing = query[name];
    query[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return { path, query };
}

/** Adds x-amz-date, x-amz-content-sha256 and Authorization for `host`. */
export async function signRequest(request: RawRequest, host: string, options: SignOptions = {}): Promise<RawRequest> {
  const body = Buffer.concat(Array.isArray(request.body) ? request.body : request.body ? [request.body] : []);
  const payloadHash = options.payloadHash ?? createHash("sha256").update(body).digest("hex");
  const { path, query } = splitTarget(request.target);
  const headers: Record<string, string> = { host, ...request.headers, "x-amz-content-sha256": payloadHash };
  const unsigned = new Set((options.unsigned ?? []).map((h) => h.toLowerCase()));
  const toSign = Object.fromEntries(Object.entries(headers).filter(([name]) => !unsigned.has(name.toLowerCase())));
  const signed = await signer(options.secretKey, options.accessKey).sign(
    { method: request.method, protocol: "http:", hostname: host, path, query, headers: toSign },
    { signingDate: options.date ?? new Date(), signingRegion: options.region ?? "us-east-1" },
  );
  return { ...request, headers: { ...headers, ...(signed.headers as Record<string, string>) } };
}

/** A presigned URL target (path + query) for `host`. */
export async function presignTarget(method: string, path: string, host: string, options: { expiresIn?: number; date?: Date; secretKey?: string; extraQuery?: Record<string, string> } = {}): Promise<string> {
  const out = await signer(options.secretKey).presign(
    { method, protocol: "http:", hostname: host, path, query: options.extraQuery ?? {}, headers: { host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } },
    {
      signingDate: options.date ?? new Date(),
      expiresIn: options.expiresIn ?? 600,
      unsignableHeaders: new Set(["x-amz-content-sha256"]),
      unhoistableHeaders: new Set(["x-amz-content-sha256"]),
    },
  );
  const query = Object.entries(out.query ?? {})
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
    .join("&");
  return `${path}?${query}`;
}

export interface ChunkedOptions extends SignOptions {
  /** Bytes per chunk (minio-go: 64 KiB). */
  chunkBytes?: number;
  /** Send Content-Encoding: aws-chunked (minio-go ≥ 7.3 does, older ones do not). */
  contentEncoding?: boolean;
  /** Trailer checksum (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), e.g. ["x-amz-checksum-crc32", base64]. */
  trailer?: [string, string];
  /** Tamper hook: change a chunk's signature by index (the final empty chunk included). */
  chunkSignature?: (index: number, signature: string) => string;
  trailerSignature?: (signature: string) => string;
}

/**
 * A STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] upload as minio-go sends it over plain HTTP:
 * seed-signed headers, then `hex;chunk-signature=…` chunks, each signed over the previous signature
 * and the chunk's SHA-256.
 */
export async function signedChunkedPut(target: string, host: string, payload: Buffer, headers: Record<string, string>, options: ChunkedOptions = {}): Promise<RawRequest> {
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const date = options.date ?? new Date();
  const region = options.region ?? "us-east-1";
  const mode = options.trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const chunks: Buffer[] = [];
  for (let at = 0; at < payload.length; at += chunkBytes) chunks.push(payload.subarray(at, at + chunkBytes));
  chunks.push(Buffer.alloc(0));
  const sigHex = 64;
  const framing = chunks.reduce((sum, c) => sum + c.length.toString(16).length + ";chunk-signature=".length + sigHex + 2 + c.length + (c.length > 0 ? 2 : 0), 0);
  const trailerText = options.trailer ? `${options.trailer[0]}:${options.trailer[1]}\r\n` : "";
  const trailerSigLine = options.trailer ? `x-amz-trailer-signature:${"0".repeat(64)}\r\n` : "";
  const encodedLength = framing + (options.trailer ? trailerText.length + trailerSigLine.length : 0) + 2;
  const base: RawRequest = {
    method: "PUT",
    target,
    headers: {
      ...headers,
      "x-amz-decoded-content-length": String(payload.length),
      "content-length": String(encodedLength),
      ...(options.contentEncoding ? { "content-encoding": "aws-chunked" } : {}),
      ...(options.trailer ? { "x-amz-trailer": options.trailer[0] } : {}),
    },
  };
  const seeded = await signRequest(base, host, { ...options, date, payloadHash: mode });
  let previous = /Signature=([0-9a-f]{64})/.exec(seeded.headers.authorization!)![1]!;
  const sig = signer(options.secretKey, options.accessKey);
  const body: Buffer[] = [];
  for (const [index, chunk] of chunks.entries()) {
    let signature = await sig.sign({ headers: new Uint8Array(0), payload: chunk }, { signingDate: date, signingRegion: region, priorSignature: previous });
    previous = signature;
    if (options.chunkSignature) signature = options.chunkSignature(index, signature);
    body.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signature}\r\n`));
    if (chunk.length > 0) body.push(chunk, Buffer.from("\r\n"));
  }
  if (options.trailer) {
    const canonical = `${options.trailer[0]}:${options.trailer[1]}\n`;
    const scope = `${seeded.headers["x-amz-date"]!.slice(0, 8)}/${region}/s3/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256-TRAILER", seeded.headers["x-amz-date"]!, scope, previous, createHash("sha256").update(canonical).digest("hex")].join("\n");
    let trailerSignature = await sig.sign(toSign, { signingDate: date, signingRegion: region });
    if (options.trailerSignature) trailerSignature = options.trailerSignature(trailerSignature);
    body.push(Buffer.from(trailerText), Buffer.from(`x-amz-trailer-signature:${trailerSignature}\r\n`));
  }
  body.push(Buffer.from("\r\n"));
  return { ...seeded, body };
}

/** An unsigned aws-chunked body with a trailing checksum, as the AWS SDKs send it (one chunk, or several). */
export function unsignedTrailerBody(payload: Buffer, trailer: [string, string], chunkBytes = payload.length || 1): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < payload.length; at += chunkBytes) {
    const chunk = payload.subarray(at, at + chunkBytes);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`0\r\n${trailer[0]}:${trailer[1]}\r\n\r\n`));
  return Buffer.concat(parts);
}

/** Sends a raw request to 127.0.0.1:port (http or https with `ca`) and collects the reply. */
export function send(port: number, request: RawRequest, options: { ca?: string; https?: boolean } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const transport = options.https ? https : http;
    const req = transport.request(
      { host: "127.0.0.1", port, method: request.method, path: request.target, headers: request.headers, ...(options.ca ? { ca: options.ca } : {}), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const text = body.toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    for (const part of Array.isArray(request.body) ? request.body : request.body ? [request.body] : []) req.write(part);
    req.end();
  });
}
