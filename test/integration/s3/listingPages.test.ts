import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { CreateBucketCommand, ListBucketsCommand, ListObjectsCommand, ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer, sdkFor } from "../../s3/harness.js";
import { send, signRequest } from "../../s3/signer.js";
import { awsCli } from "../../s3/awsCli.js";

const FOLDERS = Array.from({ length: 1001 }, (_, i) => `f${String(i).padStart(4, "0")}/`);

/** ListObjects v1 and ListObjectVersions page by marker; a folder must never repeat across pages. */
describe("listing pages", () => {
  let s3: S3TestServer;
  let sdk: S3Client;
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-listing-"));
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["bkt", "few"] });
    // Plain files placed in the bucket folder, as LVP or an admin would: 1,001 folders of one object each.
    for (const folder of FOLDERS) {
      mkdirSync(join(s3.root, "bkt", folder));
      writeFileSync(join(s3.root, "bkt", folder, "x"), "x");
    }
    for (const key of ["a/1", "a/2", "b/1", "c d/1", "e"]) {
      mkdirSync(join(s3.root, "few", key, ".."), { recursive: true });
      writeFileSync(join(s3.root, "few", key), key);
    }
    sdk = sdkFor(s3);
  });
  afterAll(async () => {
    sdk.destroy();
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  });

  function aws(signal: AbortSignal) {
    const cli = awsCli(work, signal);
    return (args: string[]) => cli(s3, args);
  }

  it("aws s3api list-objects (v1, paged by NextMarker) lists 1,001 folders as 1,001 common prefixes", async ({ signal }) => {
    const out = JSON.parse((await aws(signal)(["s3api", "list-objects", "--bucket", "bkt", "--delimiter", "/"])).stdout) as { CommonPrefixes: Array<{ Prefix: string }> };
    expect(out.CommonPrefixes.map((p) => p.Prefix)).toEqual(FOLDERS);
  }, 120_000);

  it("aws s3api list-objects with one key per page ends, each folder once; its Prefix comes back as sent", async ({ signal }) => {
    const out = JSON.parse((await aws(signal)(["s3api", "list-objects", "--bucket", "few", "--delimiter", "/", "--page-size", "1"])).stdout) as {
      CommonPrefixes: Array<{ Prefix: string }>;
      Contents: Array<{ Key: string }>;
    };
    expect(out.CommonPrefixes.map((p) => p.Prefix)).toEqual(["a/", "b/", "c d/"]);
    expect(out.Contents.map((o) => o.Key)).toEqual(["e"]);
    // awscli asks for encoding-type=url and, as botocore does for v1, does not decode the top-level Prefix.
    const prefixed = JSON.parse((await aws(signal)(["s3api", "list-objects", "--no-paginate", "--bucket", "few", "--prefix", "c d/"])).stdout) as { Prefix: string; Contents: Array<{ Key: string }> };
    expect(prefixed.Prefix).toBe("c d/");
    expect(prefixed.Contents.map((o) => o.Key)).toEqual(["c d/1"]);
  }, 120_000);

  it("ListObjects and ListObjectVersions with MaxKeys 1 and a delimiter (AWS SDK) end, listing each folder once", async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await sdk.send(new ListObjectsCommand({ Bucket: "few", Delimiter: "/", MaxKeys: 1, Marker: marker }));
      seen.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((o) => o.Key!));
      if (!page.IsTruncated) break;
      marker = page.NextMarker;
    }
    expect(seen).toEqual(["a/", "b/", "c d/", "e"]);
    const versions: string[] = [];
    let keyMarker: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await sdk.send(new ListObjectVersionsCommand({ Bucket: "few", Delimiter: "/", MaxKeys: 1, KeyMarker: keyMarker }));
      versions.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Versions ?? []).map((o) => o.Key!));
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
    }
    expect(versions).toEqual(["a/", "b/", "c d/", "e"]);
  });

  it("v1 with encoding-type=url encodes keys, prefixes and markers but not Prefix; an empty v2 continuation-token starts at the beginning", async () => {
    const v1 = await send(s3.port, await signRequest({ method: "GET", target: "/few?prefix=c%20d%2F&marker=c%20d%2F0&encoding-type=url", headers: {} }, s3.host));
    expect(v1.status, v1.text).toBe(200);
    expect(v1.text).toContain("<Prefix>c d/</Prefix>");
    expect(v1.text).toContain("<Marker>c%20d/0</Marker>");
    expect(v1.text).toContain("<Key>c%20d/1</Key>");
    const v2 = await send(s3.port, await signRequest({ method: "GET", target: "/few?list-type=2&continuation-token=&prefix=a%2F", headers: {} }, s3.host));
    expect(v2.status, v2.text).toBe(200);
    expect(v2.text).toContain("<Key>a/1</Key><");
    expect(v2.text).toContain("<KeyCount>2</KeyCount>");
  });

  it("ListBuckets honours max-buckets and continues from its ContinuationToken", async () => {
    await sdk.send(new CreateBucketCommand({ Bucket: "more" }));
    const names: string[] = [];
    let token: string | undefined;
    for (let pages = 0; pages < 5; pages++) {
      const page = await sdk.send(new ListBucketsCommand({ MaxBuckets: 2, ContinuationToken: token }));
      expect(page.Buckets!.length).toBeLessThanOrEqual(2);
      names.push(...page.Buckets!.map((b) => b.Name!));
      token = page.ContinuationToken;
      if (!token) break;
    }
    expect(names).toEqual(["bkt", "few", "more"]);
    const bad = await send(s3.port, await signRequest({ method: "GET", target: "/?max-buckets=0", headers: {} }, s3.host));
    expect({ status: bad.status, code: bad.code }).toEqual({ status: 400, code: "InvalidArgument" });
  });
});
