import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import type {
  S3Client} from "@aws-sdk/client-s3";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { send, signRequest } from "../../s3/signer.js";

const MiB = 1024 * 1024;
const crc32Raw = (b: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(b));
  return out;
};
const crc32b64 = (b: Buffer) => crc32Raw(b).toString("base64");
/** S3's composite checksum: the CRC32 of the parts' raw CRC32s, "-N". */
const compositeCrc32 = (parts: Buffer[]) => `${crc32b64(Buffer.concat(parts.map(crc32Raw)))}-${parts.length}`;

describe("multipart objects: whole-object checksums and parts", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1000)];
  const body = Buffer.concat(parts);
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt"] });
    sdk = sdkFor(s3);
    // lib-storage, like Velero's uploader: CRC32 on every part, a COMPOSITE checksum for the object.
    await new Upload({ client: sdk, params: { Bucket: "bkt", Key: "three-parts", Body: Readable.from([body]) }, partSize: 5 * MiB }).done();
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
  });

  async function uploadParts(key: string, create: Partial<ConstructorParameters<typeof CreateMultipartUploadCommand>[0]> = {}) {
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "bkt", Key: key, ChecksumAlgorithm: "CRC32", ...create }));
    const done = [];
    for (const [i, part] of parts.entries()) {
      const out = await sdk.send(new UploadPartCommand({ Bucket: "bkt", Key: key, UploadId, PartNumber: i + 1, Body: part, ChecksumAlgorithm: "CRC32" }));
      done.push({ PartNumber: i + 1, ETag: out.ETag!, ChecksumCRC32: out.ChecksumCRC32! });
    }
    return { uploadId: UploadId!, done };
  }

  it("returns the COMPOSITE checksum from Complete, and from HEAD and GET with checksum mode enabled", async () => {
    const { uploadId, done } = await uploadParts("composite");
    const complete = await sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "composite", UploadId: uploadId, MultipartUpload: { Parts: done } }));
    expect(complete.ChecksumCRC32).toBe(compositeCrc32(parts));
    expect(complete.ChecksumType).toBe("COMPOSITE");
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "composite", ChecksumMode: "ENABLED" }));
    expect([head.ChecksumCRC32, head.ChecksumType]).toEqual([compositeCrc32(parts), "COMPOSITE"]);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "composite", ChecksumMode: "ENABLED" }));
    expect([got.ChecksumCRC32, got.ChecksumType]).toEqual([compositeCrc32(parts), "COMPOSITE"]);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    const viaLibStorage = await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "three-parts", ChecksumMode: "ENABLED" }));
    expect(viaLibStorage.ChecksumCRC32).toBe(compositeCrc32(parts));
  });

  it("verifies a whole-object checksum sent with Complete: a wrong one is 400 BadDigest and nothing is stored; the right one is accepted", async () => {
    const { uploadId, done } = await uploadParts("checked");
    const wrong = `${crc32b64(Buffer.from("other"))}-3`;
    await expect(
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "checked", UploadId: uploadId, MultipartUpload: { Parts: done }, ChecksumCRC32: wrong })),
    ).rejects.toMatchObject({ name: "BadDigest", $metadata: { httpStatusCode: 400 } });
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "checked" }))).rejects.toMatchObject({ name: "NotFound" });
    // Another algorithm than the upload's: InvalidRequest.
    const sha = createHash("sha256").update(body).digest("base64");
    await expect(
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "checked", UploadId: uploadId, MultipartUpload: { Parts: done }, ChecksumSHA256: sha })),
    ).rejects.toMatchObject({ name: "InvalidRequest" });
    // A part checksum in the list that is not the part's: InvalidPart.
    await expect(
      sdk.send(
        new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "checked", UploadId: uploadId, MultipartUpload: { Parts: [{ ...done[0]!, ChecksumCRC32: crc32b64(Buffer.from("x")) }, ...done.slice(1)] } }),
      ),
    ).rejects.toMatchObject({ name: "InvalidPart" });
    const ok = await sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "checked", UploadId: uploadId, MultipartUpload: { Parts: done }, ChecksumCRC32: compositeCrc32(parts) }));
    expect(ok.ChecksumCRC32).toBe(compositeCrc32(parts));
  });

  it("FULL_OBJECT uploads: the checksum of the whole body is computed, checked and returned", async () => {
    const full = crc32b64(body);
    const first = await uploadParts("full-wrong", { ChecksumType: "FULL_OBJECT" });
    await expect(
      sdk.send(new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "full-wrong", UploadId: first.uploadId, MultipartUpload: { Parts: first.done }, ChecksumCRC32: crc32b64(Buffer.from("no")), ChecksumType: "FULL_OBJECT" })),
    ).rejects.toMatchObject({ name: "BadDigest" });
    await expect(sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "full-wrong" }))).rejects.toMatchObject({ name: "NotFound" });
    // The upload is still there after the refused Complete.
    expect((await sdk.send(new ListMultipartUploadsCommand({ Bucket: "bkt", Prefix: "full-wrong" }))).Uploads).toHaveLength(1);
    const ok = await sdk.send(
      new CompleteMultipartUploadCommand({ Bucket: "bkt", Key: "full-wrong", UploadId: first.uploadId, MultipartUpload: { Parts: first.done }, ChecksumCRC32: full, ChecksumType: "FULL_OBJECT" }),
    );
    expect([ok.ChecksumCRC32, ok.ChecksumType]).toEqual([full, "FULL_OBJECT"]);
    const head = await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "full-wrong", ChecksumMode: "ENABLED" }));
    expect([head.ChecksumCRC32, head.ChecksumType]).toEqual([full, "FULL_OBJECT"]);
  });

  it("GET and HEAD ?partNumber=N serve part N (206, Content-Range, x-amz-mp-parts-count); past the last part: 416 InvalidPartNumber", async () => {
    let start = 0;
    for (const [i, part] of parts.entries()) {
      const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "three-parts", PartNumber: i + 1 }));
      expect(got.$metadata.httpStatusCode).toBe(206);
      expect(got.ContentRange).toBe(`bytes ${start}-${start + part.length - 1}/${body.length}`);
      expect(got.PartsCount).toBe(3);
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(part)).toBe(true);
      const head = await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "three-parts", PartNumber: i + 1 }));
      expect([head.ContentLength, head.PartsCount]).toEqual([part.length, 3]);
      start += part.length;
    }
    await expect(sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "three-parts", PartNumber: 4 }))).rejects.toMatchObject({
      name: "InvalidPartNumber",
      $metadata: { httpStatusCode: 416 },
    });
    const both = await send(s3.port, await signRequest({ method: "GET", target: "/bkt/three-parts?partNumber=1", headers: { range: "bytes=0-1" } }, s3.host));
    expect({ status: both.status, code: both.code }).toEqual({ status: 400, code: "InvalidRequest" });
  });

  it("part 1 of an object uploaded in one piece is the whole object; part 2 is 416", async () => {
    const single = randomBytes(1234);
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "single", Body: single }));
    const got = await sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "single", PartNumber: 1 }));
    expect(got.ContentRange).toBe(`bytes 0-1233/1234`);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(single)).toBe(true);
    await expect(sdk.send(new GetObjectCommand({ Bucket: "bkt", Key: "single", PartNumber: 2 }))).rejects.toMatchObject({ name: "InvalidPartNumber" });
  });
});
