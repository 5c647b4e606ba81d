import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer } from "../../s3/harness.js";

const MiB = 1024 * 1024;

function client(s3: S3TestServer, extra: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: s3.url,
    region: "eu-central-1",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    ...(s3.ca ? { requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: s3.ca.certPem }) }) } : {}),
    ...extra,
  });
}

/** Status and body of a plain GET (no SDK), as `velero backup logs` or curl would fetch a presigned URL. */
function fetchUrl(url: string, ca?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    get(url, ca ? { ca } : {}, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

const md5hex = (b: Buffer) => createHash("md5").update(b).digest("hex");
const crc32b64 = (b: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(b));
  return out.toString("base64");
};

/** The whole client matrix runs over plain HTTP and over HTTPS: the SDK sends different payload modes on each. */
describe.each([
  ["http", false],
  ["https", true],
])("@aws-sdk/client-s3 over %s", (_scheme, tls) => {
  let s3: S3TestServer;
  let sdk: S3Client;

  beforeAll(async () => {
    // The server's --region is the clients' (SDK v3 sends its region as CreateBucket's LocationConstraint).
    s3 = await startS3({ tls, overrides: { region: "eu-central-1" } });
    sdk = client(s3);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  it("creates, lists, locates and heads buckets; refuses a second create and a missing bucket", async () => {
    await sdk.send(new CreateBucketCommand({ Bucket: "velero" }));
    // Another region than the server's is refused, as S3 refuses a LocationConstraint that is not the
    // endpoint's region; an invalid name is InvalidLocationConstraint. Neither creates anything.
    await expect(sdk.send(new CreateBucketCommand({ Bucket: "kopia", CreateBucketConfiguration: { LocationConstraint: "us-west-2" } }))).rejects.toMatchObject({
      name: "IllegalLocationConstraintException",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(sdk.send(new CreateBucketCommand({ Bucket: "kopia", CreateBucketConfiguration: { LocationConstraint: "moon-base" as never } }))).rejects.toMatchObject({
      name: "InvalidLocationConstraint",
    });
    await expect(sdk.send(new HeadBucketCommand({ Bucket: "kopia" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    await sdk.send(new CreateBucketCommand({ Bucket: "kopia", CreateBucketConfiguration: { LocationConstraint: "eu-central-1" } }));
    await expect(sdk.send(new CreateBucketCommand({ Bucket: "velero" }))).rejects.toMatchObject({ name: "BucketAlreadyOwnedByYou" });
    const { Buckets } = await sdk.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toEqual(["kopia", "velero"]);
    await sdk.send(new HeadBucketCommand({ Bucket: "velero" }));
    await expect(sdk.send(new HeadBucketCommand({ Bucket: "missing" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect((await sdk.send(new GetBucketLocationCommand({ Bucket: "velero" }))).LocationConstraint).toBe("eu-central-1");
    await expect(sdk.send(new ListObjectsV2Command({ Bucket: "missing" }))).rejects.toMatchObject({ name: "NoSuchBucket" });
    await expect(sdk.send(new CreateBucketCommand({ Bucket: "Bad_Name" }))).rejects.toMatchObject({ name: "InvalidBucketName" });
  });

  it("stores Buffer and stream bodies exactly (the default CRC32 checksum verified and returned), with metadata", async () => {
    const small = randomBytes(1000);
    const put = await sdk.send(new PutObjectCommand({ Bucket: "velero", Key: "backups/b1/velero-backup.json", Body: small, ContentType: "application/json", Metadata: { Owner: "ops" } }));
    expect(put.ETag).toBe(`"${md5hex(small)}"`);
    expect(put.ChecksumCRC32).toBe(crc32b64(small));

    // A stream of unknown length: the SDK sends STREAMING-UNSIGNED-PAYLOAD-TRAILER aws-chunked with a CRC32 trailer.
    const streamed = randomBytes(3 * MiB + 11);
    const parts = [streamed.subarray(0, MiB), streamed.subarray(MiB, 2 * MiB + 5), streamed.subarray(2 * MiB + 5)];
    await sdk.send(new PutObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz", Body: Readable.from(parts), ContentLength: streamed.length, ContentEncoding: "gzip" }));
    const got = await sdk.send(new GetObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz", ChecksumMode: "ENABLED" }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    // The framing is stripped: stored bytes are the payload (velero#9951).
    expect(bytes.equals(streamed)).toBe(true);
    expect(got.ChecksumCRC32).toBe(crc32b64(streamed));
    expect(got.ETag).toBe(`"${md5hex(streamed)}"`);
    // The client's own Content-Encoding is kept; the aws-chunked transfer coding is not.
    expect(got.ContentEncoding).toBe("gzip");

    const head = await sdk.send(new HeadObjectCommand({ Bucket: "velero", Key: "backups/b1/velero-backup.json" }));
    expect(head).toMatchObject({ ContentLength: 1000, ContentType: "application/json", Metadata: { owner: "ops" }, ETag: `"${md5hex(small)}"` });
    expect(head.LastModified!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("stores what other checksum algorithms and Content-MD5 describe", async () => {
    for (const algorithm of ["CRC32C", "SHA1", "SHA256", "CRC64NVME"] as const) {
      const body = randomBytes(4096);
      const put = await sdk.send(new PutObjectCommand({ Bucket: "velero", Key: `sums/${algorithm}`, Body: body, ChecksumAlgorithm: algorithm }));
      const head = await sdk.send(new HeadObjectCommand({ Bucket: "velero", Key: `sums/${algorithm}`, ChecksumMode: "ENABLED" }));
      const field = `Checksum${algorithm}` as const;
      expect(head[field]).toBeDefined();
      expect(head[field]).toBe(put[field]);
    }
    const body = randomBytes(2048);
    await sdk.send(new PutObjectCommand({ Bucket: "velero", Key: "sums/md5", Body: body, ContentMD5: createHash("md5").update(body).digest("base64") }));
    await expect(
      sdk.send(new PutObjectCommand({ Bucket: "velero", Key: "sums/md5-bad", Body: body, ContentMD5: createHash("md5").update("other").digest("base64") })),
    ).rejects.toMatchObject({ name: "BadDigest" });
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "velero", Key: "sums/md5-bad" }))).rejects.toMatchObject({ name: "NotFound" });
  });

  it("serves ranges (206, suffix, open-ended) and refuses unsatisfiable ones with 416", async () => {
    const body = randomBytes(10_000);
    await sdk.send(new PutObjectCommand({ Bucket: "kopia", Key: "p0001", Body: body }));
    const read = async (range: string) => {
      const out = await sdk.send(new GetObjectCommand({ Bucket: "kopia", Key: "p0001", Range: range }));
      return { bytes: Buffer.from(await out.Body!.transformToByteArray()), range: out.ContentRange };
    };
    expect(await read("bytes=0-1")).toEqual({ bytes: body.subarray(0, 2), range: "bytes 0-1/10000" });
    expect(await read("bytes=9990-")).toEqual({ bytes: body.subarray(9990), range: "bytes 9990-9999/10000" });
    expect(await read("bytes=-5")).toEqual({ bytes: body.subarray(9995), range: "bytes 9995-9999/10000" });
    await expect(sdk.send(new GetObjectCommand({ Bucket: "kopia", Key: "p0001", Range: "bytes=10000-" }))).rejects.toMatchObject({ name: "InvalidRange" });
    await expect(sdk.send(new GetObjectCommand({ Bucket: "kopia", Key: "nope" }))).rejects.toMatchObject({ name: "NoSuchKey" });
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "kopia", Key: "nope" }))).rejects.toMatchObject({ name: "NotFound" });
  });

  it("lists v2 with prefix, delimiter, pages, start-after and url encoding; v1 with markers", async () => {
    const keys = ["list/a", "list/b/1", "list/b/2", "list/c d", "list/é", "list/z/9"];
    for (const key of keys) await sdk.send(new PutObjectCommand({ Bucket: "kopia", Key: key, Body: key }));
    const all: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await sdk.send(new ListObjectsV2Command({ Bucket: "kopia", Prefix: "list/", MaxKeys: 2, ContinuationToken: token }));
      all.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
      expect(page.IsTruncated).toBe(token !== undefined);
      pages++;
    } while (token);
    expect(all).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(pages).toBe(3);

    const grouped = await sdk.send(new ListObjectsV2Command({ Bucket: "kopia", Prefix: "list/", Delimiter: "/" }));
    expect(grouped.Contents?.map((o) => o.Key)).toEqual(["list/a", "list/c d", "list/é"]);
    expect(grouped.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["list/b/", "list/z/"]);
    expect(grouped.KeyCount).toBe(5);
    // Listings carry each object's ETag (s3cmd sync needs it), from its metadata record.
    expect(grouped.Contents?.map((o) => o.ETag)).toEqual(["list/a", "list/c d", "list/é"].map((key) => `"${md5hex(Buffer.from(key))}"`));

    const after = await sdk.send(new ListObjectsV2Command({ Bucket: "kopia", Prefix: "list/", StartAfter: "list/b/2" }));
    // UTF-8 byte order: "z" (0x7a) sorts before "é" (0xc3 0xa9).
    expect(after.Contents?.map((o) => o.Key)).toEqual(["list/c d", "list/z/9", "list/é"]);
    const encoded = await sdk.send(new ListObjectsV2Command({ Bucket: "kopia", Prefix: "list/c", EncodingType: "url" }));
    // With encoding-type=url the keys come back percent-encoded (SDK v3 hands them over as they are).
    expect(encoded.Contents?.map((o) => o.Key)).toEqual(["list/c%20d"]);
    expect(encoded.EncodingType).toBe("url");

    const v1 = await sdk.send(new ListObjectsCommand({ Bucket: "kopia", Prefix: "list/", Delimiter: "/", MaxKeys: 3 }));
    expect(v1.IsTruncated).toBe(true);
    expect(v1.NextMarker).toBeDefined();
    const rest = await sdk.send(new ListObjectsCommand({ Bucket: "kopia", Prefix: "list/", Delimiter: "/", Marker: v1.NextMarker }));
    const seen = [...(v1.Contents ?? []).map((o) => o.Key), ...(v1.CommonPrefixes ?? []).map((p) => p.Prefix), ...(rest.Contents ?? []).map((o) => o.Key), ...(rest.CommonPrefixes ?? []).map((p) => p.Prefix)];
    expect(new Set(seen)).toEqual(new Set(["list/a", "list/b/", "list/c d", "list/é", "list/z/"]));
  });

  it("copies, deletes one (204, also when missing) and many", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "kopia", Key: "copy/src", Body: "source", ContentType: "text/plain", Metadata: { a: "1" } }));
    await sdk.send(new CopyObjectCommand({ Bucket: "velero", Key: "copy/dst", CopySource: "kopia/copy/src" }));
    const copied = await sdk.send(new GetObjectCommand({ Bucket: "velero", Key: "copy/dst" }));
    expect(await copied.Body!.transformToString()).toBe("source");
    expect(copied).toMatchObject({ ContentType: "text/plain", Metadata: { a: "1" } });

    const deleted = await sdk.send(new DeleteObjectCommand({ Bucket: "velero", Key: "copy/dst" }));
    expect(deleted.$metadata.httpStatusCode).toBe(204);
    expect((await sdk.send(new DeleteObjectCommand({ Bucket: "velero", Key: "copy/dst" }))).$metadata.httpStatusCode).toBe(204);

    for (const key of ["many/1", "many/2", "many/3"]) await sdk.send(new PutObjectCommand({ Bucket: "kopia", Key: key, Body: key }));
    const result = await sdk.send(new DeleteObjectsCommand({ Bucket: "kopia", Delete: { Objects: [{ Key: "many/1" }, { Key: "many/2" }, { Key: "many/missing" }] } }));
    expect(result.Deleted?.map((d) => d.Key).sort()).toEqual(["many/1", "many/2", "many/missing"]);
    const left = await sdk.send(new ListObjectsV2Command({ Bucket: "kopia", Prefix: "many/" }));
    expect(left.Contents?.map((o) => o.Key)).toEqual(["many/3"]);
  });

  it("does multipart uploads from 5 MiB parts (lib-storage, like Velero's uploader) with the S3 multipart ETag", async () => {
    const body = randomBytes(12 * MiB + 123);
    const upload = new Upload({ client: sdk, params: { Bucket: "velero", Key: "backups/b2/b2.tar.gz", Body: Readable.from([body]) }, partSize: 5 * MiB, queueSize: 3 });
    const done = await upload.done();
    const partMd5s = [0, 5 * MiB, 10 * MiB].map((at) => createHash("md5").update(body.subarray(at, at + 5 * MiB)).digest());
    expect(done.ETag).toBe(`"${createHash("md5").update(Buffer.concat(partMd5s)).digest("hex")}-3"`);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "velero", Key: "backups/b2/b2.tar.gz" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    // Nothing of the upload is left, and nothing of it ever showed in a listing.
    expect((await sdk.send(new ListMultipartUploadsCommand({ Bucket: "velero" }))).Uploads ?? []).toEqual([]);
  });

  it("lists parts and uploads, aborts, and hides unfinished uploads from listings", async () => {
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "velero", Key: "mpu/aborted" }));
    const part = randomBytes(5 * MiB);
    const p1 = await sdk.send(new UploadPartCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId, PartNumber: 1, Body: part }));
    await sdk.send(new UploadPartCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId, PartNumber: 2, Body: Buffer.from("x") }));
    const parts = await sdk.send(new ListPartsCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([
      [1, 5 * MiB, p1.ETag],
      [2, 1, `"${md5hex(Buffer.from("x"))}"`],
    ]);
    const uploads = await sdk.send(new ListMultipartUploadsCommand({ Bucket: "velero" }));
    expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([["mpu/aborted", UploadId]]);
    const listing = await sdk.send(new ListObjectsV2Command({ Bucket: "velero", Prefix: "mpu/" }));
    expect(listing.KeyCount).toBe(0);
    expect((await sdk.send(new AbortMultipartUploadCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId }))).$metadata.httpStatusCode).toBe(204);
    await expect(sdk.send(new ListPartsCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId }))).rejects.toMatchObject({ name: "NoSuchUpload" });
    await expect(
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "velero", Key: "mpu/aborted", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }] } })),
    ).rejects.toMatchObject({ name: "NoSuchUpload" });
  });

  it("mints presigned GET and PUT URLs that plain HTTP clients can use, until they expire", async () => {
    const body = randomBytes(70_000);
    await sdk.send(new PutObjectCommand({ Bucket: "velero", Key: "backups/b1/b1-logs.gz", Body: body }));
    const url = await getSignedUrl(sdk, new GetObjectCommand({ Bucket: "velero", Key: "backups/b1/b1-logs.gz" }), { expiresIn: 600 });
    expect(url).toContain("X-Amz-Signature=");
    const fetched = await fetchUrl(url, s3.ca?.certPem);
    expect(fetched.status).toBe(200);
    expect(fetched.body.equals(body)).toBe(true);

    const tampered = url.replace("b1-logs.gz", "b1-other.gz");
    expect((await fetchUrl(tampered, s3.ca?.certPem)).status).toBe(403);

    const putUrl = await getSignedUrl(sdk, new PutObjectCommand({ Bucket: "velero", Key: "presigned/put" }), { expiresIn: 60 });
    const uploaded = await new Promise<number>((resolve, reject) => {
      const target = new URL(putUrl);
      const req = (target.protocol === "https:" ? https : http).request(target, { method: "PUT", ...(s3.ca ? { ca: s3.ca.certPem } : {}), headers: { "content-length": 5 } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end("hello");
    });
    expect(uploaded).toBe(200);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "velero", Key: "presigned/put" }));
    expect(await got.Body!.transformToString()).toBe("hello");
  });

  it("deletes an empty bucket only", async () => {
    await sdk.send(new CreateBucketCommand({ Bucket: "scratch" }));
    await sdk.send(new PutObjectCommand({ Bucket: "scratch", Key: "x", Body: "x" }));
    await expect(sdk.send(new DeleteBucketCommand({ Bucket: "scratch" }))).rejects.toMatchObject({ name: "BucketNotEmpty" });
    await sdk.send(new DeleteObjectCommand({ Bucket: "scratch", Key: "x" }));
    expect((await sdk.send(new DeleteBucketCommand({ Bucket: "scratch" }))).$metadata.httpStatusCode).toBe(204);
    await expect(sdk.send(new HeadBucketCommand({ Bucket: "scratch" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  it("refuses wrong credentials with the S3 codes the SDK understands", async () => {
    const wrongSecret = client(s3, { credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: "not-the-secret" } });
    await expect(wrongSecret.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: "SignatureDoesNotMatch" });
    const unknown = client(s3, { credentials: { accessKeyId: "AKIAUNKNOWN", secretAccessKey: SECRET_KEY } });
    await expect(unknown.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: "InvalidAccessKeyId" });
    wrongSecret.destroy();
    unknown.destroy();
  });
});
