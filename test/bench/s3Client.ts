// The S3 client the S3 benchmarks share (test/bench/s3.ts against nginx and the store, test/bench/s3Peer.ts
// against versitygw): pre-built, pre-signed requests over a node:http keep-alive agent, the S3 operations
// they time, curl for GETs, and how our server and the peer are started on a temp root.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { cacheDir, pinnedVersions, repoRoot } from "../cluster/binaries.js";
import { freePort, type Child } from "../cluster/processes.js";
import { ACCESS_KEY, CREDENTIALS_FILE_TEXT, SECRET_KEY } from "../s3/harness.js";
import { signedChunkedPut, signRequest, type RawRequest } from "../s3/signer.js";
import { gibps, seconds, startServer, type BenchDir } from "./benchServers.js";

export const BUCKET = "bench";
const execFileAsync = promisify(execFile);
const cli = path.join(repoRoot, "dist/src/cli.js");

/**
 * Keep-alive connections for every request; replaced before each figure, so no connection sits idle
 * for the server's 95 s keep-alive timeout and races its close with our next request.
 */
let agent = new http.Agent({ keepAlive: true });
export function freshAgent(): void {
  agent.destroy();
  agent = new http.Agent({ keepAlive: true });
}

/** Closes the keep-alive connections (before the servers stop). */
export function closeAgent(): void {
  agent.destroy();
}

// --- HTTP client -------------------------------------------------------------------------------

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  bytes: number;
}

/** The request (headers, body length) and the reply, for an error message. */
export function describe(request: RawRequest, reply?: Reply): string {
  const parts = Array.isArray(request.body) ? request.body : request.body ? [request.body] : [];
  const lines = [`> ${request.method} ${request.target} HTTP/1.1`, ...Object.entries(request.headers).map(([n, v]) => `> ${n}: ${v}`), `> (body: ${parts.reduce((s, p) => s + p.length, 0)} bytes)`];
  if (reply) lines.push(`< HTTP ${reply.status}`, ...Object.entries(reply.headers).map(([n, v]) => `< ${n}: ${String(v)}`), `< ${reply.text.slice(0, 4000)}`);
  return lines.join("\n");
}

/**
 * Sends a request over the keep-alive agent: a pre-built body (one Buffer, or a list written in one
 * corked batch), so the client costs little. The reply's body is kept as text (`discard`: only counted).
 */
export function send(port: number, request: RawRequest, options: { discard?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: "127.0.0.1", port, method: request.method, path: request.target, headers: request.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
        if (!options.discard) chunks.push(c);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8"), bytes }));
      res.on("error", reject);
    });
    r.on("error", (error) => reject(new Error(`${error.message}\n${describe(request)}`)));
    const parts = Array.isArray(request.body) ? request.body : request.body ? [request.body] : [];
    if (parts.length > 1) r.cork();
    for (const part of parts) r.write(part);
    r.end();
  });
}

/** Sends and insists on one of `statuses` (and, for 200 answers, no S3 error document). */
export async function expectStatus(port: number, request: RawRequest, statuses: number[], what: string, options: { discard?: boolean } = {}): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await send(port, request, options);
  } catch (error) {
    throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
  }
  if (!statuses.includes(reply.status) || /<Error>/.test(reply.text)) throw new Error(`${what}: expected HTTP ${statuses.join(" or ")}, got:\n${describe(request, reply)}`);
  return reply;
}

/** A PUT body from memory with its digests, computed once (a client would compute them per upload). */
export interface Payload {
  body: Buffer;
  md5Base64: string;
  md5Hex: string;
  sha256Hex: string;
}

export function payload(body: Buffer): Payload {
  const md5 = createHash("md5").update(body).digest();
  return { body, md5Base64: md5.toString("base64"), md5Hex: md5.toString("hex"), sha256Hex: createHash("sha256").update(body).digest("hex") };
}

export type PutMode = "unsigned" | "chunked" | "sha256";
export const MODE_NAMES: Record<PutMode, string> = {
  unsigned: "UNSIGNED-PAYLOAD + Content-MD5",
  chunked: "signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks) + Content-MD5",
  sha256: "hex SHA-256 payload hash",
};

/**
 * A single PUT as each client sends it: kopia over HTTPS (UNSIGNED-PAYLOAD + Content-MD5), kopia
 * over HTTP (minio-go's signed 64 KiB aws-chunked body + Content-MD5, Content-Type unsigned), and a
 * hex SHA-256 payload hash (the AWS SDKs over HTTP). The aws-chunked body is a list of the payload's
 * 64 KiB slices and the framing lines: nothing is copied.
 */
export async function buildPut(mode: PutMode, host: string, key: string, p: Payload): Promise<RawRequest> {
  const target = `/${BUCKET}/${key}`;
  const kopia = { "content-type": "application/x-kopia", "content-md5": p.md5Base64 };
  if (mode === "chunked") return signedChunkedPut(target, host, p.body, kopia, { unsigned: ["content-type"] });
  const headers = { "content-length": String(p.body.length), ...(mode === "unsigned" ? kopia : { "content-type": "application/octet-stream" }) };
  const signed = await signRequest({ method: "PUT", target, headers }, host, { payloadHash: mode === "unsigned" ? "UNSIGNED-PAYLOAD" : p.sha256Hex });
  return { ...signed, body: p.body };
}

// --- S3 operations -----------------------------------------------------------------------------

export interface S3Server {
  name: string;
  port: number;
  host: string;
  child: Child;
}

/** Our S3 API (`storage --s3-listen`, a child process) on `root`, with the bucket created. */
export async function startS3(bench: BenchDir, name: string, root: string, durability: "full" | "none"): Promise<S3Server> {
  const credentials = path.join(bench.dir, "credentials");
  writeFileSync(credentials, CREDENTIALS_FILE_TEXT, { mode: 0o600 });
  return startWithBucket(bench, name, root, (listen) => ({
    command: process.execPath,
    args: [cli, "storage", "--root", root, "--s3-listen", listen, "--credentials", credentials, "--health-listen", "none", "--durability", durability, "--drain-delay", "0"],
    env: { LOG_LEVEL: "warn" },
  }));
}

/** versitygw (`make bench-s3-peer` builds it) with its posix backend on `root`, the same keys as ours, the bucket created. */
export async function startVersity(bench: BenchDir, name: string, root: string): Promise<S3Server> {
  return startWithBucket(bench, name, root, (listen) => ({
    command: path.join(cacheDir, "bin", `versitygw-${pinnedVersions().VERSITYGW}`),
    args: ["--port", listen, "posix", root],
    env: { ROOT_ACCESS_KEY_ID: ACCESS_KEY, ROOT_SECRET_ACCESS_KEY: SECRET_KEY },
  }));
}

async function startWithBucket(bench: BenchDir, name: string, root: string, command: (listen: string) => { command: string; args: string[]; env: NodeJS.ProcessEnv }): Promise<S3Server> {
  mkdirSync(root);
  const port = await freePort();
  const c = command(`127.0.0.1:${port}`);
  const child = await startServer(bench, name, c.command, c.args, `http://127.0.0.1:${port}/`, c.env);
  const server = { name, port, host: `127.0.0.1:${port}`, child };
  await expectStatus(port, await signRequest({ method: "PUT", target: `/${BUCKET}`, headers: {} }, server.host), [200], `${name}: CreateBucket`);
  return server;
}

export async function s3Delete(server: S3Server, key: string): Promise<void> {
  await expectStatus(server.port, await signRequest({ method: "DELETE", target: `/${BUCKET}/${key}`, headers: {} }, server.host), [204], `${server.name}: DeleteObject ${key}`);
}

export async function s3Put(server: S3Server, mode: PutMode, key: string, p: Payload): Promise<void> {
  const request = await buildPut(mode, server.host, key, p);
  const reply = await expectStatus(server.port, request, [200], `${server.name}: PutObject (${mode})`);
  if (reply.headers.etag !== `"${p.md5Hex}"`) throw new Error(`${server.name}: PutObject answered ETag ${reply.headers.etag}, expected "${p.md5Hex}":\n${describe(request, reply)}`);
}

/** Part digests of the multipart body, computed once. */
export interface PartPlan {
  data: Buffer;
  parts: Array<{ number: number; body: Buffer; sha256Hex: string }>;
}

/** `data` cut into parts of `partBytes` (the last one shorter), each with its SHA-256. */
export function planParts(data: Buffer, partBytes: number): PartPlan {
  const parts: PartPlan["parts"] = [];
  for (let at = 0, number = 1; at < data.length; at += partBytes, number++) {
    const body = data.subarray(at, Math.min(data.length, at + partBytes));
    parts.push({ number, body, sha256Hex: createHash("sha256").update(body).digest("hex") });
  }
  return { data, parts };
}

/** Seconds a multipart upload spent in Create + the parts, and in Complete. */
export interface MultipartPhases {
  parts: number;
  complete: number;
}

/** CreateMultipartUpload, every part (`concurrency` at a time), CompleteMultipartUpload; resolves with the phases' durations. */
export async function multipartUpload(server: S3Server, key: string, plan: PartPlan, payloadHash: "sha256" | "unsigned", concurrency: number): Promise<MultipartPhases> {
  const started = performance.now();
  const target = `/${BUCKET}/${key}`;
  const created = await expectStatus(server.port, await signRequest({ method: "POST", target: `${target}?uploads=`, headers: { "content-type": "application/octet-stream" } }, server.host), [200], "CreateMultipartUpload");
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)?.[1];
  if (!uploadId) throw new Error(`CreateMultipartUpload answered no UploadId:\n${created.text}`);
  const etags = new Map<number, string>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plan.parts.length) {
        const part = plan.parts[next++]!;
        const signed = await signRequest(
          { method: "PUT", target: `${target}?partNumber=${part.number}&uploadId=${encodeURIComponent(uploadId)}`, headers: { "content-length": String(part.body.length) } },
          server.host,
          { payloadHash: payloadHash === "sha256" ? part.sha256Hex : "UNSIGNED-PAYLOAD" },
        );
        const reply = await expectStatus(server.port, { ...signed, body: part.body }, [200], `UploadPart ${part.number}`);
        etags.set(part.number, String(reply.headers.etag));
      }
    }),
  );
  const partsDone = performance.now();
  const xml = `<CompleteMultipartUpload>${plan.parts.map((p) => `<Part><PartNumber>${p.number}</PartNumber><ETag>${etags.get(p.number)}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
  const complete = await signRequest({ method: "POST", target: `${target}?uploadId=${encodeURIComponent(uploadId)}`, headers: { "content-type": "application/xml" }, body: Buffer.from(xml) }, server.host);
  const done = await expectStatus(server.port, complete, [200], "CompleteMultipartUpload");
  const etag = /<ETag>([^<]+)<\/ETag>/.exec(done.text)?.[1]?.replace(/&quot;|&#34;/g, '"');
  if (!etag?.endsWith(`-${plan.parts.length}"`)) throw new Error(`CompleteMultipartUpload answered no multipart ETag:\n${done.text}`);
  return { parts: (partsDone - started) / 1000, complete: seconds(partsDone) };
}

/** Every page of ListObjectsV2 under `prefix` as kopia asks for it; resolves with the number of keys. */
export async function listAll(server: S3Server, prefix: string): Promise<number> {
  let keys = 0;
  let token: string | undefined;
  for (let page = 0; ; page++) {
    const query = `list-type=2&encoding-type=url&prefix=${encodeURIComponent(prefix)}&delimiter=%2F&fetch-owner=true&max-keys=1000${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
    const reply = await expectStatus(server.port, await signRequest({ method: "GET", target: `/${BUCKET}/?${query}`, headers: {} }, server.host), [200], `ListObjectsV2 page ${page + 1}`);
    keys += (reply.text.match(/<Key>/g) ?? []).length;
    if (!/<IsTruncated>true<\/IsTruncated>/.test(reply.text)) return keys;
    token = /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(reply.text)?.[1]?.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" })[e]!);
    if (!token) throw new Error(`ListObjectsV2 page ${page + 1} is truncated but has no NextContinuationToken:\n${reply.text.slice(0, 2000)}`);
  }
}

// --- curl downloads ----------------------------------------------------------------------------

/** GiB/s of `count` sequential GETs of one URL over one curl keep-alive connection (bytes over the sum of transfer times). */
export async function curlGets(url: string, headers: Record<string, string>, count: number, expectBytes: number): Promise<number> {
  const args = ["-s", ...Object.entries(headers).flatMap(([name, value]) => (name === "host" ? [] : ["-H", `${name}: ${value}`])), "-w", "%{http_code} %{size_download} %{time_total}\n"];
  for (let i = 0; i < count; i++) args.push("-o", "/dev/null", url);
  const { stdout } = await execFileAsync("curl", args, { maxBuffer: 1 << 20 });
  let bytes = 0;
  let time = 0;
  for (const line of stdout.trim().split("\n")) {
    const [code, size, total] = line.split(" ").map(Number) as [number, number, number];
    if (code !== 200 || size !== expectBytes) throw new Error(`curl GET ${url.split("?")[0]}: HTTP ${code}, ${size} bytes (expected 200 and ${expectBytes}); headers ${JSON.stringify(headers)}`);
    bytes += size;
    time += total;
  }
  return gibps(bytes, time);
}
