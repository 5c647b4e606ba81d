import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../cluster/binaries.js";
import { freePort, startChild, type Child } from "../../cluster/processes.js";
import { until } from "../../cluster/wait.js";
import { ACCESS_KEY, CREDENTIALS_FILE_TEXT, SECRET_KEY } from "../../s3/harness.js";

const cli = join(repoRoot, "dist/src/cli.js");

/** `app-snapshots storage --s3-listen` as a process: flags, credential reload, metrics, presigned URLs from `storage sign`, shutdown. */
describe("storage --s3-listen (the CLI)", () => {
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-s3-cli-"));
  const root = join(work, "root");
  const credentialsFile = join(work, "cloud");
  const logFile = join(work, "storage.log");
  let child: Child;
  let port: number;
  let healthPort: number;
  const client = (accessKeyId = ACCESS_KEY, secretAccessKey = SECRET_KEY) =>
    new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });

  beforeAll(async () => {
    mkdirSync(join(root, "velero"), { recursive: true });
    writeFileSync(credentialsFile, CREDENTIALS_FILE_TEXT);
    [port, healthPort] = [await freePort(), await freePort()];
    child = startChild(
      "storage",
      process.execPath,
      [cli, "storage", "--root", root, "--s3-listen", `127.0.0.1:${port}`, "--credentials", credentialsFile, "--health-listen", `127.0.0.1:${healthPort}`, "--no-bucket-changes", "--drain-delay", "0"],
      logFile,
      { LOG_LEVEL: "debug" },
    );
    await until("the S3 endpoint answers", async () => ((await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.ok ? true : undefined), 20_000);
  });

  afterAll(async () => {
    await child?.stop(5_000);
    rmSync(work, { recursive: true, force: true });
  });

  it("stores and serves objects; --no-bucket-changes refuses CreateBucket", async () => {
    const s3 = client();
    const body = randomBytes(100_000);
    await s3.send(new PutObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    // The object is a plain file at the LVP layout path.
    expect(readFileSync(join(root, "velero/backups/b1/b1.tar.gz")).equals(body)).toBe(true);
    await expect(s3.send(new CreateBucketCommand({ Bucket: "other" }))).rejects.toMatchObject({ name: "AccessDenied" });
    s3.destroy();
  });

  it("mints presigned URLs with `storage sign --credentials` that fetch the object", async () => {
    const url = execFileSync(process.execPath, [cli, "storage", "sign", "s3://velero/backups/b1/b1.tar.gz", "--credentials", credentialsFile, "--public-url", `http://127.0.0.1:${port}`, "--ttl", "2m"], {
      encoding: "utf8",
    }).trim();
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/velero/backups/b1/b1\\.tar\\.gz\\?X-Amz-Algorithm=AWS4-HMAC-SHA256&`));
    expect(url).toContain("X-Amz-Expires=120");
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(root, "velero/backups/b1/b1.tar.gz")))).toBe(true);
  });

  it("reloads the credentials file: a rotated-out key is refused, the new one works", async () => {
    writeFileSync(credentialsFile, "[velero]\naws_access_key_id = AKIAROTATED\naws_secret_access_key = rotated-secret-key\n");
    const rotated = client("AKIAROTATED", "rotated-secret-key");
    await until("the new key is accepted", async () => ((await rotated.send(new ListBucketsCommand({})).catch(() => undefined)) ? true : undefined), 10_000);
    const old = client();
    await expect(old.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: "InvalidAccessKeyId" });
    // A broken file is ignored: the last good credentials stay in use.
    writeFileSync(credentialsFile, "[velero]\naws_access_key_id = only-half\n");
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await rotated.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual(["velero"]);
    rotated.destroy();
    old.destroy();
  });

  it("counts requests per operation and status, and never logs a secret", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    expect(metrics).toMatch(/app_snapshots_storage_requests_total\{server="s3",operation="PutObject",code="200"\} 1/);
    expect(metrics).toMatch(/app_snapshots_storage_requests_total\{server="s3",operation="CreateBucket",code="403"\} 1/);
    expect(metrics).toMatch(/app_snapshots_storage_received_bytes_total\{server="s3"\} 100000/);
    expect(metrics).toMatch(/app_snapshots_storage_request_duration_seconds_bucket\{le="0.005",server="s3",operation="GetObject"\}/);
    const log = readFileSync(logFile, "utf8");
    expect(log).toContain("S3 credentials reloaded");
    expect(log).not.toContain(SECRET_KEY);
    expect(log).not.toContain("rotated-secret-key");
    expect(log).not.toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
  });

  it("refuses bad flag combinations before touching the root", () => {
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, [cli, "storage", ...args], { encoding: "utf8", stdio: "pipe" });
        return "";
      } catch (err) {
        return String((err as { stderr?: string }).stderr);
      }
    };
    expect(run(["--root", root, "--s3-listen", ":0"])).toContain("--s3-listen needs --credentials");
    expect(run(["--root", root, "--s3-listen", ":0", "--credentials", credentialsFile, "--read-only"])).toContain("cannot be combined with --read-only");
    expect(run(["--root", root, "--s3-listen", ":0", "--credentials", credentialsFile, "--s3-idle-timeout", "soon"])).toContain('--s3-idle-timeout "soon" is not a Go duration');
    const fresh = join(work, "fresh-cloud");
    writeFileSync(fresh, CREDENTIALS_FILE_TEXT);
    expect(run(["sign", "s3://velero/x", "--credentials", fresh])).toBe("app-snapshots: give --public-url: the S3 endpoint as the URL's user reaches it\n");
    expect(run(["sign", "s3://velero/x", "--credentials", credentialsFile, "--public-url", "http://x"])).toMatch(/^app-snapshots: profile \[velero\] \(line 1\) needs both/);
  });

  it("stops on SIGTERM with exit code 0", async () => {
    child.process.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  });
});
