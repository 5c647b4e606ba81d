import { PassThrough } from "node:stream";
import type { S3Client} from "@aws-sdk/client-s3";
import { CopyObjectCommand, CreateMultipartUploadCommand, CompleteMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../../src/server/logger.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";
import { createStorageMetrics } from "../../../src/storage/metrics.js";
import { startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { send, signRequest } from "../../s3/signer.js";

const STANDARD = {
  CacheControl: "max-age=60, private",
  ContentDisposition: 'attachment; filename="backup.tar.gz"',
  ContentLanguage: "de-CH",
  Expires: new Date("2031-01-02T03:04:05Z"),
};

describe("stored standard headers, and features refused loudly", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  const logLines: Array<Record<string, unknown>> = [];
  const registry = createMetricsRegistry();
  beforeAll(async () => {
    const destination = new PassThrough();
    destination.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
    });
    s3 = await startS3({ buckets: ["bkt"], overrides: { log: createLogger({ level: "info", destination }), metrics: createStorageMetrics(registry) } });
    sdk = sdkFor(s3);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  const expectStandard = (out: { CacheControl?: string; ContentDisposition?: string; ContentLanguage?: string; Expires?: Date }) => {
    expect(out.CacheControl).toBe(STANDARD.CacheControl);
    expect(out.ContentDisposition).toBe(STANDARD.ContentDisposition);
    expect(out.ContentLanguage).toBe(STANDARD.ContentLanguage);
    expect(out.Expires?.toISOString()).toBe(STANDARD.Expires.toISOString());
  };

  it("stores Cache-Control, Content-Disposition, Content-Language and Expires from PUT and returns them on GET and HEAD", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "h/put", Body: "x", ...STANDARD }));
    expectStandard(await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "h/put" })));
    expectStandard(await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "h/put" })));
  });

  it("from CreateMultipartUpload, and through CopyObject (COPY keeps them, REPLACE takes the request's)", async () => {
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: "h/mpu", ...STANDARD }));
    const { ETag } = await sdk.send(new UploadPartCommand({ Bucket: "bkt", Key: "h/mpu", UploadId, PartNumber: 1, Body: "part" }));
    await sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "h/mpu", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }));
    expectStandard(await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "h/mpu" })));
    await sdk.send(new CopyObjectCommand({ Bucket: "bkt", Key: "h/copy", CopySource: "bkt/h/mpu" }));
    expectStandard(await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "h/copy" })));
    await sdk.send(new CopyObjectCommand({ Bucket: "bkt", Key: "h/copy", CopySource: "bkt/h/mpu", MetadataDirective: "REPLACE", CacheControl: "no-store" }));
    const replaced = await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "h/copy" }));
    expect([replaced.CacheControl, replaced.ContentDisposition, replaced.ContentLanguage, replaced.Expires]).toEqual(["no-store", undefined, undefined, undefined]);
  });

  it("response-* parameters of a presigned GET override the stored headers", async () => {
    const url = await getSignedUrl(sdk, new GetObjectCommand({ Bucket: "bkt", Key: "h/put", ResponseCacheControl: "no-cache", ResponseContentDisposition: "inline" }), { expiresIn: 60 });
    const reply = await fetch(url);
    expect(reply.status).toBe(200);
    expect([reply.headers.get("cache-control"), reply.headers.get("content-disposition"), reply.headers.get("content-language")]).toEqual(["no-cache", "inline", STANDARD.ContentLanguage]);
  });

  it("x-amz-acl: private is accepted; any other canned ACL or a grant is 501 NotImplemented, nothing stored", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "acl/private", Body: "x", ACL: "private" }));
    for (const ACL of ["public-read", "authenticated-read", "bucket-owner-full-control"] as const) {
      await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "acl/public", Body: "x", ACL })), ACL).rejects.toMatchObject({ name: "NotImplemented", $metadata: { httpStatusCode: 501 } });
    }
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "acl/public", Body: "x", GrantRead: "uri=http://acs.amazonaws.com/groups/global/AllUsers" }))).rejects.toMatchObject({ name: "NotImplemented" });
    await expect(sdk.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: "acl/public", ACL: "public-read" }))).rejects.toMatchObject({ name: "NotImplemented" });
    await expect(sdk.send(new CopyObjectCommand({ Bucket: "bkt", Key: "acl/public", CopySource: "bkt/acl/private", ACL: "public-read" }))).rejects.toMatchObject({ name: "NotImplemented" });
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "acl/public" }))).rejects.toMatchObject({ name: "NotFound" });
    const bucket = await send(s3.port, await signRequest({ method: "PUT", target: "/public-bucket", headers: { "x-amz-acl": "public-read" } }, s3.host));
    expect({ status: bucket.status, code: bucket.code }).toEqual({ status: 501, code: "NotImplemented" });
  });

  it("a 501 is logged at warn without a stack trace and counted under its S3 operation name", async () => {
    const reply = await send(s3.port, await signRequest({ method: "GET", target: "/bkt?acl", headers: {} }, s3.host));
    expect({ status: reply.status, code: reply.code }).toEqual({ status: 501, code: "NotImplemented" });
    const line = logLines.find((l) => l.operation === "GetBucketAcl");
    expect(line).toMatchObject({ level: 40, code: "NotImplemented", status: 501 });
    expect(JSON.stringify(line)).not.toMatch(/"stack"| {4}at /);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/app_snapshots_storage_requests_total\{server="s3",operation="GetBucketAcl",code="501"\} 1/);
    expect(metrics).not.toMatch(/operation="unknown",code="501"/);
  });
});
