import { randomBytes } from "node:crypto";
import type {
  S3Client} from "@aws-sdk/client-s3";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { send, signRequest } from "../../s3/signer.js";

/** No condition is ever silently ignored: each is applied (412/404 as S3 answers) or refused with 501. */
describe("conditional requests", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt"] });
    sdk = sdkFor(s3);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  const text = async (key: string) => (await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: key }))).Body!.transformToString();
  const raw = async (method: string, target: string, headers: Record<string, string> = {}, body?: Buffer) =>
    send(s3.port, await signRequest({ method, target, headers: body ? { "content-length": String(body.length), ...headers } : headers, ...(body ? { body } : {}) }, s3.host));

  it("PutObject If-None-Match: * creates a new key and answers 412 on an existing one, leaving it untouched", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/new", Body: "one", IfNoneMatch: "*" }));
    expect(await text("put/new")).toBe("one");
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/new", Body: "two", IfNoneMatch: "*" }))).rejects.toMatchObject({
      name: "PreconditionFailed",
      $metadata: { httpStatusCode: 412 },
    });
    expect(await text("put/new")).toBe("one");
  });

  it("PutObject If-None-Match: * from many writers at once: exactly one wins", async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/race", Body: `writer ${i}`, IfNoneMatch: "*" }))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ name: "PreconditionFailed" });
  });

  it("PutObject If-Match replaces only the version with that ETag (412 otherwise, 404 when missing); If-None-Match other than * is 501", async () => {
    const first = await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/match", Body: "v1" }));
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/match", Body: "v2", IfMatch: '"0123456789abcdef0123456789abcdef"' }))).rejects.toMatchObject({ name: "PreconditionFailed" });
    expect(await text("put/match")).toBe("v1");
    const second = await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/match", Body: "v2", IfMatch: first.ETag }));
    expect(await text("put/match")).toBe("v2");
    // The ETag it matched is gone now.
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/match", Body: "v3", IfMatch: first.ETag }))).rejects.toMatchObject({ name: "PreconditionFailed" });
    expect(second.ETag).not.toBe(first.ETag);
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "put/missing", Body: "x", IfMatch: first.ETag }))).rejects.toMatchObject({ name: "NoSuchKey", $metadata: { httpStatusCode: 404 } });
    const etagCondition = await raw("PUT", "/bkt/put/match", { "if-none-match": first.ETag! }, Buffer.from("v4"));
    expect({ status: etagCondition.status, code: etagCondition.code }).toEqual({ status: 501, code: "NotImplemented" });
    expect(await text("put/match")).toBe("v2");
  });

  it("CompleteMultipartUpload If-None-Match: * on an existing key: 412, the key keeps its object, the upload can still complete elsewhere", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "mpu/existing", Body: "keep me" }));
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: "mpu/existing" }));
    const { ETag } = await sdk.send(new UploadPartCommand({ Bucket: "bkt", Key: "mpu/existing", UploadId, PartNumber: 1, Body: randomBytes(100) }));
    await expect(
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "mpu/existing", UploadId, IfNoneMatch: "*", MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } })),
    ).rejects.toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
    expect(await text("mpu/existing")).toBe("keep me");
    // Without the condition the same upload completes.
    await sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "mpu/existing", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }));
    expect((await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "mpu/existing" }))).ContentLength).toBe(100);
  });

  it("DeleteObject If-Match with another ETag: 412 and the object stays; with its ETag: deleted", async () => {
    const { ETag } = await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "del/one", Body: "x" }));
    await expect(sdk.send(new DeleteObjectCommand({ Bucket: "bkt", Key: "del/one", IfMatch: '"0123456789abcdef0123456789abcdef"' }))).rejects.toMatchObject({
      name: "PreconditionFailed",
      $metadata: { httpStatusCode: 412 },
    });
    expect(await text("del/one")).toBe("x");
    const wrongSize = await raw("DELETE", "/bkt/del/one", { "x-amz-if-match-size": "5" });
    expect({ status: wrongSize.status, code: wrongSize.code }).toEqual({ status: 412, code: "PreconditionFailed" });
    expect(await text("del/one")).toBe("x");
    expect((await sdk.send(new DeleteObjectCommand({ Bucket: "bkt", Key: "del/one", IfMatch: ETag }))).$metadata.httpStatusCode).toBe(204);
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "del/one" }))).rejects.toMatchObject({ name: "NotFound" });
  });

  it("DeleteObjects reports PreconditionFailed for an entry whose ETag does not match, and deletes the others", async () => {
    const a = await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "many/a", Body: "a" }));
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "many/b", Body: "b" }));
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "many/c", Body: "c" }));
    const result = await sdk.send(
      new DeleteObjectsCommand({
        Bucket: "bkt",
        Delete: {
          Objects: [{ Key: "many/a", ETag: a.ETag }, { Key: "many/b", ETag: '"0123456789abcdef0123456789abcdef"' }, { Key: "many/c" }],
        },
      }),
    );
    expect(result.Deleted?.map((d) => d.Key).sort()).toEqual(["many/a", "many/c"]);
    expect(result.Errors?.map((e) => [e.Key, e.Code])).toEqual([["many/b", "PreconditionFailed"]]);
    expect(await text("many/b")).toBe("b");
  });

  it("CopyObject applies x-amz-copy-source-if-match/-none-match/-modified-since/-unmodified-since (412 when one fails)", async () => {
    const { ETag } = await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "copy/src", Body: "source" }));
    const past = new Date(Date.now() - 3600_000);
    const future = new Date(Date.now() + 3600_000);
    const copy = (extra: Partial<ConstructorParameters<typeof CopyObjectCommand>[0]>) =>
      sdk.send(new CopyObjectCommand({ Bucket: "bkt", Key: "copy/dst", CopySource: "bkt/copy/src", ...extra }));
    for (const failing of [
      { CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' },
      { CopySourceIfNoneMatch: ETag },
      { CopySourceIfModifiedSince: future },
      { CopySourceIfUnmodifiedSince: past },
    ]) {
      await expect(copy(failing), JSON.stringify(failing)).rejects.toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
      await expect(sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "copy/dst" }))).rejects.toMatchObject({ name: "NotFound" });
    }
    for (const holding of [{ CopySourceIfMatch: ETag }, { CopySourceIfNoneMatch: '"0123456789abcdef0123456789abcdef"' }, { CopySourceIfModifiedSince: past }, { CopySourceIfUnmodifiedSince: future }]) {
      await copy(holding);
      expect(await text("copy/dst")).toBe("source");
    }
    // S3: if-match true and if-unmodified-since false: the copy proceeds.
    await copy({ CopySourceIfMatch: ETag, CopySourceIfUnmodifiedSince: past });
  });

  it("CopyObject's destination If-None-Match: * is applied too", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "copy/taken", Body: "taken" }));
    const reply = await raw("PUT", "/bkt/copy/taken", { "x-amz-copy-source": "/bkt/copy/src", "if-none-match": "*" });
    expect({ status: reply.status, code: reply.code }).toEqual({ status: 412, code: "PreconditionFailed" });
    expect(await text("copy/taken")).toBe("taken");
  });
});
