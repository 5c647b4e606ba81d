import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  S3Client} from "@aws-sdk/client-s3";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rcloneTool } from "../../s3/clientTools.js";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { runToolOk, type RunOptions } from "../../s3/runTool.js";
import { awsCli } from "../../s3/awsCli.js";

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

describe("UploadPartCopy", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-partcopy-"));
  const source = randomBytes(12 * MiB + 7);
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt", "other"] });
    sdk = sdkFor(s3);
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "big/source.bin", Body: source }));
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("copies byte ranges of an object into parts (AWS SDK), and the completed object is those bytes", async () => {
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "other", Key: "copied.bin" }));
    const ranges: Array<[number, number]> = [
      [0, 5 * MiB - 1],
      [5 * MiB, source.length - 1],
    ];
    const parts = [];
    for (const [i, [first, last]] of ranges.entries()) {
      const out = await sdk.send(
        new UploadPartCopyCommand({ Bucket: "other", Key: "copied.bin", UploadId, PartNumber: i + 1, CopySource: "bkt/big/source.bin", CopySourceRange: `bytes=${first}-${last}` }),
      );
      expect(out.CopyPartResult?.ETag).toBe(`"${md5(source.subarray(first, last + 1))}"`);
      parts.push({ PartNumber: i + 1, ETag: out.CopyPartResult!.ETag });
    }
    await sdk.send(new CompleteMultipartUploadCommand({ Bucket: "other", Key: "copied.bin", UploadId, MultipartUpload: { Parts: parts } }));
    const got = await sdk.send(new GetObjectCommand({ Bucket: "other", Key: "copied.bin" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(source)).toBe(true);
  });

  it("refuses bad ranges as S3 does: malformed → InvalidArgument, past the end → InvalidRange; a missing source → NoSuchKey", async () => {
    const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: "other", Key: "refused.bin" }));
    const copy = (range: string | undefined, from = "bkt/big/source.bin") =>
      sdk.send(new UploadPartCopyCommand({ Bucket: "other", Key: "refused.bin", UploadId, PartNumber: 1, CopySource: from, ...(range ? { CopySourceRange: range } : {}) }));
    for (const malformed of ["bytes=5-", "bytes=-5", "bytes=9-3", "items=0-1", "bytes=0-1,3-4"]) {
      await expect(copy(malformed), malformed).rejects.toMatchObject({ name: "InvalidArgument", $metadata: { httpStatusCode: 400 } });
    }
    await expect(copy(`bytes=0-${source.length}`)).rejects.toMatchObject({ name: "InvalidRange", $metadata: { httpStatusCode: 416 } });
    await expect(copy("bytes=0-1", "bkt/big/missing.bin")).rejects.toMatchObject({ name: "NoSuchKey" });
    await expect(
      sdk.send(new UploadPartCopyCommand({ Bucket: "other", Key: "refused.bin", UploadId, PartNumber: 1, CopySource: "bkt/big/source.bin", CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' })),
    ).rejects.toMatchObject({ name: "PreconditionFailed" });
    await expect(sdk.send(new UploadPartCopyCommand({ Bucket: "other", Key: "refused.bin", UploadId: "0".repeat(32), PartNumber: 1, CopySource: "bkt/big/source.bin" }))).rejects.toMatchObject({
      name: "NoSuchUpload",
    });
  });

  it("aws s3 cp and mv between keys over the 8 MiB multipart threshold (server-side UploadPartCopy)", async ({ signal }) => {
    const cli = awsCli(work, signal, { globalArgs: ["--debug"] });
    const aws = (args: string[]) => cli(s3, args);
    const cp = await aws(["s3", "cp", "s3://bkt/big/source.bin", "s3://other/by-cli/copy.bin"]);
    // The CLI did copy server-side, in parts.
    expect(cp.stderr).toMatch(/UploadPartCopy/);
    await aws(["s3", "mv", "s3://other/by-cli/copy.bin", "s3://other/by-cli/moved.bin"]);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "other", Key: "by-cli/moved.bin" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(source)).toBe(true);
    await expect(sdk.send(new GetObjectCommand({ Bucket: "other", Key: "by-cli/copy.bin" }))).rejects.toMatchObject({ name: "NoSuchKey" });
  }, 120_000);

  it("rclone server-side copy above its copy cutoff (multipart UploadPartCopy)", async ({ signal }) => {
    const env: RunOptions["env"] = {
      HOME: work,
      RCLONE_CONFIG_S3T_TYPE: "s3",
      RCLONE_CONFIG_S3T_PROVIDER: "Other",
      RCLONE_CONFIG_S3T_ENDPOINT: s3.url,
      RCLONE_CONFIG_S3T_ACCESS_KEY_ID: ACCESS_KEY,
      RCLONE_CONFIG_S3T_SECRET_ACCESS_KEY: SECRET_KEY,
      RCLONE_CONFIG_S3T_FORCE_PATH_STYLE: "true",
    };
    const run = await runToolOk(rcloneTool(), ["copyto", "s3t:bkt/big/source.bin", "s3t:other/rclone/copy.bin", "--s3-copy-cutoff", "5M", "-vv", "--dump", "headers"], { env, signal, timeoutMs: 100_000 });
    expect(run.stderr).toMatch(/x-amz-copy-source-range/i);
    const got = await sdk.send(new GetObjectCommand({ Bucket: "other", Key: "rclone/copy.bin" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(source)).toBe(true);
  }, 120_000);
});
