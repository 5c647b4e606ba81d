import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { Readable } from "node:stream";
import * as Minio from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer } from "../../s3/harness.js";

const MiB = 1024 * 1024;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function items<T>(stream: NodeJS.ReadableStream): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream as AsyncIterable<T>) out.push(item);
  return out;
}

function get(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
}

/** minio-js: GetBucketLocation first, hex SHA-256 payloads, its own multipart, presigned URLs. */
describe("minio (npm) client", () => {
  let s3: S3TestServer;
  let minio: Minio.Client;

  beforeAll(async () => {
    s3 = await startS3();
    // No region: like kopia with an empty BSL region, the client asks GetBucketLocation first.
    minio = new Minio.Client({ endPoint: "127.0.0.1", port: s3.port, useSSL: false, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, pathStyle: true, partSize: 5 * MiB });
  });
  afterAll(async () => {
    await s3.close();
  });

  it("makes, finds and lists buckets", async () => {
    await minio.makeBucket("kopia");
    expect(await minio.bucketExists("kopia")).toBe(true);
    expect(await minio.bucketExists("absent")).toBe(false);
    expect((await minio.listBuckets()).map((b) => b.name)).toEqual(["kopia"]);
  });

  it("puts, stats, reads ranges of and removes objects", async () => {
    const body = randomBytes(300_000);
    const put = await minio.putObject("kopia", "velero/kopia/ns1/p0123", body, body.length, { "Content-Type": "application/x-kopia" });
    expect(put.etag).toBe(createHash("md5").update(body).digest("hex"));
    const stat = await minio.statObject("kopia", "velero/kopia/ns1/p0123");
    expect(stat).toMatchObject({ size: body.length, etag: put.etag, metaData: { "content-type": "application/x-kopia" } });
    expect(stat.lastModified.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await collect(await minio.getObject("kopia", "velero/kopia/ns1/p0123"))).equals(body)).toBe(true);
    expect((await collect(await minio.getPartialObject("kopia", "velero/kopia/ns1/p0123", 1000, 500))).equals(body.subarray(1000, 1500))).toBe(true);
    await minio.removeObject("kopia", "velero/kopia/ns1/p0123");
    await expect(minio.statObject("kopia", "velero/kopia/ns1/p0123")).rejects.toMatchObject({ code: "NotFound" });
    // Removing what is gone succeeds (kopia's DeleteBlob).
    await minio.removeObject("kopia", "velero/kopia/ns1/p0123");
  });

  it("lists recursively and by folder, like kopia's ListBlobs", async () => {
    for (const key of ["velero/kopia/ns1/xn0_1", "velero/kopia/ns1/xn0_2", "velero/kopia/ns1/sub/q1", "velero/backups/b1/x"]) {
      await minio.putObject("kopia", key, Buffer.from(key));
    }
    const flat = await items<Minio.BucketItem>(minio.listObjectsV2("kopia", "velero/kopia/ns1/", false));
    // The client hands out a page's objects, then its prefixes.
    expect(flat.map((i) => i.name ?? i.prefix)).toEqual(["velero/kopia/ns1/xn0_1", "velero/kopia/ns1/xn0_2", "velero/kopia/ns1/sub/"]);
    const deep = await items<Minio.BucketItem>(minio.listObjectsV2("kopia", "velero/", true));
    expect(deep.map((i) => i.name)).toEqual(["velero/backups/b1/x", "velero/kopia/ns1/sub/q1", "velero/kopia/ns1/xn0_1", "velero/kopia/ns1/xn0_2"]);
    expect(deep.every((i) => typeof i.size === "number" && i.lastModified instanceof Date)).toBe(true);
  });

  it("uploads a stream of unknown size through its multipart path", async () => {
    const body = randomBytes(11 * MiB + 7);
    await minio.putObject("kopia", "big/object", Readable.from([body.subarray(0, 3 * MiB), body.subarray(3 * MiB)]));
    const stat = await minio.statObject("kopia", "big/object");
    expect(stat.size).toBe(body.length);
    // minio-js picks its own part size for unknown lengths; the ETag is the multipart form either way.
    expect(stat.etag).toMatch(/^[0-9a-f]{32}-[1-9]\d*$/);
    expect((await collect(await minio.getObject("kopia", "big/object"))).equals(body)).toBe(true);
  });

  it("copies and removes many objects", async () => {
    await minio.putObject("kopia", "copy/src", Buffer.from("copied"));
    await minio.copyObject("kopia", "copy/dst", "/kopia/copy/src");
    expect((await collect(await minio.getObject("kopia", "copy/dst"))).toString()).toBe("copied");
    await minio.removeObjects("kopia", ["copy/src", "copy/dst"]);
    expect(await items(minio.listObjectsV2("kopia", "copy/", true))).toEqual([]);
  });

  it("presigns GET URLs that plain HTTP can fetch, and they expire", async () => {
    await minio.putObject("kopia", "logs/b1-logs.gz", Buffer.from("log lines"));
    const url = await minio.presignedGetObject("kopia", "logs/b1-logs.gz", 60);
    expect(await get(url)).toEqual({ status: 200, body: Buffer.from("log lines") });
    const expired = await minio.presignedGetObject("kopia", "logs/b1-logs.gz", 1, {}, new Date(Date.now() - 120_000));
    const reply = await get(expired);
    expect(reply.status).toBe(403);
    expect(reply.body.toString()).toContain("<Code>AccessDenied</Code>");
  });
});
