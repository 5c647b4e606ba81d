import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startChild, type Child } from "../../cluster/processes.js";
import { until } from "../../cluster/wait.js";
import { ACCESS_KEY, CREDENTIALS_FILE_TEXT, SECRET_KEY } from "../../s3/harness.js";
import { createReview, fixturePod } from "../pods/support.js";
import { veleroReview } from "../velero/support.js";

/*
 * The image runs an esbuild bundle of dist/src (build/image/bundle.mjs), not dist/src with node_modules.
 * Built here from the same dist/src the other CLI tests run, it must answer every command line exactly
 * as the unbundled CLI does, and serve S3 and LVP downloads (the paths that load code at run time:
 * the lazily imported commands, the hash worker's require()d CRC packages, ./cli.js from the LVP entry).
 */
const work = mkdtempSync(join(tmpdir(), "bundle-test-"));
const bundle = join(work, "app");
const unbundled = "dist/src/cli.js";
const bundled = join(bundle, "dist/src/cli.js");
const SIGNING_KEY = randomBytes(32).toString("base64");
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(() => {
  const result = spawnSync(process.execPath, ["build/image/bundle.mjs", bundle, process.execPath], { encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
}, 120_000);

/** Each file under dir (relative path) and the sha256 of its bytes. */
function treeDigests(dir: string): Record<string, string> {
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  const digests = entries.map((d): [string, string] => [join(relative(dir, d.parentPath), d.name), createHash("sha256").update(readFileSync(join(d.parentPath, d.name))).digest("hex")]);
  return Object.fromEntries(digests.sort(([a], [b]) => a.localeCompare(b)));
}

const run = (cli: string, args: string[], input?: string) => {
  const { status, stdout, stderr } = spawnSync(process.execPath, [cli, ...args], { input, encoding: "utf8", env: { ...process.env, POD_IP: "", LVP_SIGNING_KEY: SIGNING_KEY } });
  return { status, stdout, stderr };
};

describe("the bundle", () => {
  it("is the CLI, the LVP entry and their chunks, with no node_modules beyond the hash worker's two packages", () => {
    const files = readdirSync(join(bundle, "dist/src"));
    expect(files).toEqual(expect.arrayContaining(["cli.js", "lvpFileserver.js", "pino-pretty.cjs", "pino-worker.cjs", "thread-stream-worker.cjs"]));
    expect(files.filter((f) => f.startsWith("chunk-")).length).toBeGreaterThan(1);
    expect(readdirSync(join(bundle, "node_modules"), { recursive: true }).sort()).toEqual(
      ["@aws-crypto", "@aws-crypto/crc32c", "@aws-crypto/crc32c/index.cjs", "@aws-crypto/crc32c/package.json", "@aws-sdk", "@aws-sdk/crc64-nvme", "@aws-sdk/crc64-nvme/index.cjs", "@aws-sdk/crc64-nvme/package.json"].sort(),
    );
    expect(readFileSync(bundled, "utf8").split("\n")[0]).toBe(`#!${process.execPath}`);
  });

  it("is the same bytes when built twice", () => {
    const again = join(work, "again");
    expect(spawnSync(process.execPath, ["build/image/bundle.mjs", again, process.execPath]).status).toBe(0);
    expect(treeDigests(again)).toEqual(treeDigests(bundle));
  });

  const review = JSON.stringify(createReview(fixturePod("postgres-statefulset")));
  const bsl = { apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "twin", namespace: "velero" }, spec: { provider: "aws", objectStorage: { bucket: "velero", prefix: "cluster-a" }, config: { region: "us-east-1" } } };
  it.each<[string, string[], string?]>([
    ["--version", ["--version"]],
    ["--help", ["--help"]],
    ["each command's help", ["storage", "--help"]],
    ["webhook --help", ["webhook", "--help"]],
    ["certs --help", ["certs", "--help"]],
    ["an unknown command", ["no-such-command"]],
    ["explain", ["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]],
    ["explain -o json", ["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml", "-o", "json"]],
    ["review of a pod", ["review", "--state", "examples/policies.yaml"], review],
    ["review of a Velero object", ["review", "--state", "examples/velero.yaml"], JSON.stringify(veleroReview("BackupStorageLocation", "CREATE", bsl))],
    ["review of junk", ["review"], "{kind: [}"],
    ["crds", ["crds"]],
    ["storage without a listener", ["storage", "--root", "/tmp"]],
    ["storage sign", ["storage", "sign", "s3://velero/backups/x", "--base-url", "http://10.0.0.1:3000", "--ttl", "0s"]],
  ])("answers %s exactly as the unbundled CLI", (_name, args, input) => {
    const expected = run(unbundled, args, input);
    expect(run(bundled, args, input)).toEqual(expected);
  });
});

describe("the bundle serving", () => {
  const root = join(work, "root");
  const credentials = join(work, "cloud");
  const children: Child[] = [];
  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop(5_000)));
  });

  it("stores through S3 (with the CRC32C worker) and serves signed LVP downloads, from `storage` and from the LVP entry", async () => {
    mkdirSync(join(root, "velero"), { recursive: true });
    writeFileSync(credentials, CREDENTIALS_FILE_TEXT);
    const [s3Port, lvpPort, healthPort] = [await freePort(), await freePort(), await freePort()];
    const storage = startChild(
      "storage",
      process.execPath,
      [bundled, "storage", "--root", root, "--s3-listen", `127.0.0.1:${s3Port}`, "--credentials", credentials, "--lvp-listen", `127.0.0.1:${lvpPort}`, "--health-listen", `127.0.0.1:${healthPort}`, "--drain-delay", "0"],
      join(work, "storage.log"),
      { LVP_SIGNING_KEY: SIGNING_KEY },
    );
    children.push(storage);
    await until("the bundled storage is ready", async () => ((await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.ok ? true : undefined), 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${storage.tail()}`);
    });
    const s3 = new S3Client({ endpoint: `http://127.0.0.1:${s3Port}`, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1 });
    const body = randomBytes(300_000);
    await s3.send(new PutObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz", Body: body, ChecksumAlgorithm: "CRC32C" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "velero", Key: "backups/b1/b1.tar.gz", ChecksumMode: "ENABLED" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    expect(got.ChecksumCRC32C).toBeTruthy();
    s3.destroy();

    const sign = (port: number) => run(bundled, ["storage", "sign", "s3://velero/backups/b1/b1.tar.gz", "--base-url", `http://127.0.0.1:${port}`]).stdout.trim();
    expect(Buffer.from(await (await fetch(sign(lvpPort))).arrayBuffer()).equals(body)).toBe(true);

    // LVP starts its sidecar with no arguments; extra ones override its defaults (here: a free port on loopback).
    const sidecarPort = await freePort();
    const sidecar = startChild("lvp", process.execPath, [join(bundle, "dist/src/lvpFileserver.js"), "--root", root, "--lvp-listen", `127.0.0.1:${sidecarPort}`], join(work, "lvp.log"), { LVP_SIGNING_KEY: SIGNING_KEY });
    children.push(sidecar);
    const response = await until("the bundled LVP entry answers", async () => (await fetch(sign(sidecarPort)).catch(() => undefined)) ?? undefined, 20_000);
    expect(response.status, sidecar.tail()).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
  });
});
