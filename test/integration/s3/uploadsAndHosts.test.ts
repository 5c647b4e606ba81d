import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer } from "../../s3/harness.js";
import { presignTarget, send, signRequest } from "../../s3/signer.js";

const HOUR = 3_600_000;

describe("abandoned multipart uploads and virtual-host addressing", () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3({ buckets: ["velero"], overrides: { domains: ["s3.backups.local"], publicHosts: ["backups.example.com"] } });
  });
  afterAll(async () => {
    await s3.close();
  });

  const call = async (method: string, target: string, body?: Buffer, host = s3.host) => send(s3.port, await signRequest({ method, target, headers: {}, body }, host));

  it("reclaims uploads idle longer than the configured age, and only those", async () => {
    const create = async (key: string) => /<UploadId>([0-9a-f]+)<\/UploadId>/.exec((await call("POST", `/velero/${key}?uploads`)).text)![1]!;
    const stale = await create("backups/b1/b1.tar.gz");
    expect((await call("PUT", `/velero/backups/b1/b1.tar.gz?partNumber=1&uploadId=${stale}`, Buffer.from("part"))).status).toBe(200);
    const fresh = await create("backups/b2/b2.tar.gz");

    // Two hours from now, with a one-hour limit, both are idle; with a three-hour limit, neither is.
    expect(await s3.uploads.reclaim(3 * HOUR, Date.now() + 2 * HOUR)).toBe(0);
    expect(await s3.uploads.reclaim(HOUR, Date.now())).toBe(0);
    expect(await s3.uploads.reclaim(HOUR, Date.now() + 2 * HOUR)).toBe(2);
    expect((await call("GET", `/velero/backups/b1/b1.tar.gz?uploadId=${stale}`)).code).toBe("NoSuchUpload");
    expect((await call("GET", `/velero/backups/b2/b2.tar.gz?uploadId=${fresh}`)).code).toBe("NoSuchUpload");
    // Nothing of them is left on disk.
    expect(readdirSync(join(s3.root, ".app-snapshots/uploads")).filter((name) => !name.startsWith("."))).toEqual([]);
  });

  it("answers <bucket>.<domain> Hosts as virtual-hosted buckets, path style elsewhere", async () => {
    const vhost = `velero.s3.backups.local:${s3.port}`;
    expect((await call("PUT", "/vhost/object", Buffer.from("via virtual host"), vhost)).status).toBe(200);
    const viaPath = await call("GET", "/velero/vhost/object");
    expect(viaPath.text).toBe("via virtual host");
    const listing = await call("GET", "/?list-type=2&prefix=vhost%2F", undefined, vhost);
    expect(listing.text).toContain("<Name>velero</Name>");
    expect(listing.text).toContain("<Key>vhost/object</Key>");
    // An unrelated Host is path style: "/vhost/object" is bucket "vhost".
    expect((await call("GET", "/vhost/object", undefined, `other.example:${s3.port}`)).code).toBe("NoSuchBucket");
  });

  it("verifies presigned URLs minted for the --public-url host when a proxy rewrote Host, and no other host", async () => {
    expect((await call("PUT", "/velero/logs/b1-logs.gz", Buffer.from("logs"))).status).toBe(200);
    const viaIngress = await presignTarget("GET", "/velero/logs/b1-logs.gz", "backups.example.com");
    // The ingress forwards with Host set to the Service name.
    const forwarded = await send(s3.port, { method: "GET", target: viaIngress, headers: { host: "app-snapshots-storage.velero.svc:9000" } });
    expect(forwarded.status).toBe(200);
    expect(forwarded.text).toBe("logs");
    const elsewhere = await presignTarget("GET", "/velero/logs/b1-logs.gz", "attacker.example.com");
    expect((await send(s3.port, { method: "GET", target: elsewhere, headers: { host: "app-snapshots-storage.velero.svc:9000" } })).code).toBe("SignatureDoesNotMatch");
  });
});
