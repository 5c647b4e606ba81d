import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MultipartUploads } from "../../../src/s3/multipart.js";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer } from "../../s3/harness.js";
import { send, signRequest } from "../../s3/signer.js";

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash("md5").update(b).digest();

function sdkFor(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 3 });
}

/** Two parts (5 MiB and 1 KiB) uploaded to a new upload; what Complete must be sent. */
async function twoParts(sdk: S3Client, key: string): Promise<{ uploadId: string; parts: Array<{ PartNumber: number; ETag: string }>; body: Buffer; etag: string }> {
  const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: key }));
  const chunks = [randomBytes(5 * MiB), randomBytes(1024)];
  const parts: Array<{ PartNumber: number; ETag: string }> = [];
  for (const [i, chunk] of chunks.entries()) {
    const { ETag } = await sdk.send(new UploadPartCommand({ Bucket: "bkt", Key: key, UploadId, PartNumber: i + 1, Body: chunk }));
    parts.push({ PartNumber: i + 1, ETag: ETag! });
  }
  const etag = `"${createHash("md5").update(Buffer.concat(chunks.map(md5))).digest("hex")}-2"`;
  return { uploadId: UploadId!, parts, body: Buffer.concat(chunks), etag };
}

function completeXml(parts: Array<{ PartNumber: number; ETag: string }>): Buffer {
  return Buffer.from(`<CompleteMultipartUpload>${parts.map((p) => `<Part><PartNumber>${p.PartNumber}</PartNumber><ETag>${p.ETag}</ETag></Part>`).join("")}</CompleteMultipartUpload>`);
}

async function rawComplete(s3: S3TestServer, key: string, uploadId: string, parts: Array<{ PartNumber: number; ETag: string }>, headers: Record<string, string> = {}) {
  const body = completeXml(parts);
  const request = await signRequest({ method: "POST", target: `/bkt/${key}?uploadId=${uploadId}`, headers: { "content-length": String(body.length), ...headers }, body }, s3.host);
  return send(s3.port, request);
}

/**
 * A proxy that loses the answer to the first CompleteMultipartUpload: the server completes the
 * upload, the client sees its connection reset (a timeout or a broken connection, as a load
 * balancer may cause) and retries.
 */
async function lossyProxy(target: S3TestServer): Promise<{ url: string; completes: number; close(): Promise<void> }> {
  const state = { completes: 0 };
  const server = http.createServer((req, res) => {
    const isComplete = req.method === "POST" && (req.url ?? "").includes("uploadId=");
    if (isComplete) state.completes++;
    const lose = isComplete && state.completes === 1;
    const upstream = http.request({ host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (lose) {
        answer.resume();
        answer.on("end", () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get completes() {
      return state.completes;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("a retried or concurrent CompleteMultipartUpload", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt"] });
    sdk = sdkFor(s3.url);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  it("the AWS SDK retrying a Complete whose answer was lost gets 200 with the same ETag, and the object is whole", async () => {
    const { uploadId, parts, body, etag } = await twoParts(sdk, "retried");
    const proxy = await lossyProxy(s3);
    const viaProxy = sdkFor(proxy.url);
    try {
      const done = await viaProxy.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "retried", UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      expect(done.ETag).toBe(etag);
      // The SDK did retry: the server saw the Complete twice.
      expect(proxy.completes).toBe(2);
    } finally {
      viaProxy.destroy();
      await proxy.close();
    }
    const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "retried" }));
    expect(got.ETag).toBe(etag);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it("two Completes at once both get 200 with the same ETag", async () => {
    const { uploadId, parts, etag } = await twoParts(sdk, "concurrent");
    const replies = await Promise.all([rawComplete(s3, "concurrent", uploadId, parts), rawComplete(s3, "concurrent", uploadId, parts)]);
    for (const reply of replies) {
      expect(reply.status, reply.text).toBe(200);
      expect(reply.text).toContain(`<ETag>${etag.replace(/"/g, "&quot;")}</ETag>`);
    }
  });

  it("a retry naming other parts, or another key, is NoSuchUpload as before", async () => {
    const { uploadId, parts } = await twoParts(sdk, "other-list");
    expect((await rawComplete(s3, "other-list", uploadId, parts)).status).toBe(200);
    const fewer = await rawComplete(s3, "other-list", uploadId, parts.slice(0, 1));
    expect({ status: fewer.status, code: fewer.code }).toEqual({ status: 404, code: "NoSuchUpload" });
    const elsewhere = await rawComplete(s3, "another-key", uploadId, parts);
    expect({ status: elsewhere.status, code: elsewhere.code }).toEqual({ status: 404, code: "NoSuchUpload" });
  });

  it("is remembered across a restart: a new MultipartUploads on the same root answers the retry", async () => {
    const { uploadId, parts, etag } = await twoParts(sdk, "restart");
    expect((await rawComplete(s3, "restart", uploadId, parts)).status).toBe(200);
    const reopened = await MultipartUploads.open(s3.store, { hashPool: s3.store.hashPool, durability: "full" });
    try {
      const again = await reopened.complete(
        "bkt",
        "restart",
        uploadId,
        parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag })),
      );
      expect(`"${again.etag}"`).toBe(etag);
    } finally {
      await reopened.close();
    }
  });
});

describe("a long CompleteMultipartUpload keeps its connection alive", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  beforeAll(async () => {
    // The 200 goes out as soon as the parts are checked and the assembly starts.
    s3 = await startS3({ buckets: ["bkt"], overrides: { completeKeepAlive: { firstAfterMs: 0, everyMs: 1 } } });
    sdk = sdkFor(s3.url);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  it("sends 200 and the headers before the object is assembled (chunked, no length), then the result", async () => {
    const { uploadId, parts, etag, body } = await twoParts(sdk, "slow");
    const reply = await rawComplete(s3, "slow", uploadId, parts);
    expect(reply.status).toBe(200);
    expect(reply.headers["transfer-encoding"]).toBe("chunked");
    expect(reply.headers["content-length"]).toBeUndefined();
    expect(reply.text).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n\s*<CompleteMultipartUploadResult xmlns="[^"]+">/);
    expect(reply.text).toContain(`<ETag>${etag.replace(/"/g, "&quot;")}</ETag>`);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "slow" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it("an error after the 200 goes in the body as an <Error> document, which the AWS SDK reports", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "taken", Body: "first" }));
    const { uploadId, parts } = await twoParts(sdk, "taken");
    const reply = await rawComplete(s3, "taken", uploadId, parts, { "if-none-match": "*" });
    expect(reply.status).toBe(200);
    expect(reply.text).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n\s*<Error><Code>PreconditionFailed<\/Code>/);
    await expect(sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "taken", UploadId: uploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: "*" }))).rejects.toMatchObject({
      name: "PreconditionFailed",
    });
    // Nothing was overwritten.
    expect(await (await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "taken" }))).Body!.transformToString()).toBe("first");
  });
});
