import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { awsCli } from "../../s3/awsCli.js";

/** Keys ending in "/" with an empty body: what rclone --s3-directory-markers, the S3 console and S3 browsers' "create folder" write. */
describe("folder markers", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-markers-"));
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt"] });
    sdk = sdkFor(s3);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  });

  const list = async (prefix: string, delimiter?: string) => {
    const page = await sdk.send(new ListObjectsV2Command({ Bucket: "bkt", Prefix: prefix, Delimiter: delimiter }));
    return { keys: (page.Contents ?? []).map((o) => o.Key), prefixes: (page.CommonPrefixes ?? []).map((p) => p.Prefix) };
  };

  it("stores dir/ and lists it as a key under its prefix, beside the keys below it", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "photos/", Body: new Uint8Array(0) }));
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "photos/a.jpg", Body: "jpeg" }));
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "photos/2024/", Body: new Uint8Array(0) }));
    expect(await list("photos/")).toEqual({ keys: ["photos/", "photos/2024/", "photos/a.jpg"], prefixes: [] });
    expect(await list("photos/", "/")).toEqual({ keys: ["photos/", "photos/a.jpg"], prefixes: ["photos/2024/"] });
    expect(await list("", "/")).toEqual({ keys: [], prefixes: ["photos/"] });
    expect((await sdk.send(new HeadObjectCommand({ Bucket: "bkt", Key: "photos/" }))).ContentLength).toBe(0);
    // On disk the marker is a reserved name inside the folder (docs/storage.md).
    expect(existsSync(join(s3.root, "bkt", "photos", ".app-snapshots-folder"))).toBe(true);

    // Deleting the marker leaves the keys below it; deleting the last key leaves the marker.
    await sdk.send(new DeleteObjectCommand({ Bucket: "bkt", Key: "photos/" }));
    expect(await list("photos/")).toEqual({ keys: ["photos/2024/", "photos/a.jpg"], prefixes: [] });
    await sdk.send(new DeleteObjectCommand({ Bucket: "bkt", Key: "photos/a.jpg" }));
    expect(await list("photos/")).toEqual({ keys: ["photos/2024/"], prefixes: [] });
    await sdk.send(new DeleteObjectCommand({ Bucket: "bkt", Key: "photos/2024/" }));
    expect(await list("")).toEqual({ keys: [], prefixes: [] });
    expect(existsSync(join(s3.root, "bkt", "photos"))).toBe(false);
  });

  it("a key that needs a file where a folder is, or the reverse, is 409 KeyConflict", async () => {
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "c/d", Body: "x" }));
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "c", Body: "y" }))).rejects.toMatchObject({ name: "KeyConflict", $metadata: { httpStatusCode: 409 } });
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "file", Body: "y" }));
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "file/", Body: new Uint8Array(0) }))).rejects.toMatchObject({ name: "KeyConflict", $metadata: { httpStatusCode: 409 } });
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "file/x", Body: new Uint8Array(0) }))).rejects.toMatchObject({ name: "KeyConflict", $metadata: { httpStatusCode: 409 } });
    await sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "m/", Body: new Uint8Array(0) }));
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "m", Body: new Uint8Array(0) }))).rejects.toMatchObject({ name: "KeyConflict", $metadata: { httpStatusCode: 409 } });
    // The reserved name is refused as a key segment, so no object can pose as a marker.
    await expect(sdk.send(new PutObjectCommand({ Bucket: "bkt", Key: "m/.app-snapshots-folder", Body: new Uint8Array(0) }))).rejects.toMatchObject({ name: "InvalidArgument" });
  });

  // rclone's --s3-directory-markers needs rclone 1.64; Debian bookworm's (our pinned client) is 1.60. The AWS CLI
  // creates a folder as the S3 console does: put-object of "name/" with no body.
  it("awscli: put-object of a folder key, then s3 ls shows it as a folder and s3api lists it as a key", async ({ signal }) => {
    const cli = awsCli(work, signal, { timeoutMs: 60_000 });
    const aws = (args: string[]) => cli(s3, args);
    await aws(["s3api", "put-object", "--bucket", "bkt", "--key", "made-by-aws/"]);
    await aws(["s3api", "put-object", "--bucket", "bkt", "--key", "made-by-aws/inner/"]);
    expect((await aws(["s3", "ls", "s3://bkt/made-by-aws/"])).stdout).toMatch(/^\s+PRE inner\/$/m);
    const listed = JSON.parse((await aws(["s3api", "list-objects-v2", "--bucket", "bkt", "--prefix", "made-by-aws/"])).stdout) as { Contents: Array<{ Key: string; Size: number }> };
    expect(listed.Contents.map((o) => [o.Key, o.Size])).toEqual([
      ["made-by-aws/", 0],
      ["made-by-aws/inner/", 0],
    ]);
    await aws(["s3", "rm", "--recursive", "s3://bkt/made-by-aws/"]);
    expect(await list("made-by-aws/")).toEqual({ keys: [], prefixes: [] });
  }, 90_000);
});
