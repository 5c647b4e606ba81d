import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, type RunningServer } from "../../src/server/http.js";
import { createMetricsRegistry } from "../../src/server/metrics.js";
import { createStorageMetrics } from "../../src/storage/metrics.js";
import { lvpHandler } from "../../src/storage/lvpServer.js";
import { keyFromFile } from "../../src/storage/signingKeys.js";
import { ObjectStore } from "../../src/storage/store.js";
import { lvpPluginSign } from "../storage/lvpPluginSign.js";
import { fileBudgetSeconds, fuzz, fuzzTimeoutMs } from "./support/budget.js";
import { errorCollectingLogger } from "../logging/collectingLogger.js";
import { exchange } from "./support/exchange.js";
import { applyMutations, mutations } from "./support/mutate.js";

/**
 * The LVP file server under hostile signed URLs: URLs signed as LVP's plugin signs them, for stored
 * objects, missing ones and links planted out of the root, then mutated (path, percent-encoding,
 * expiry, signature, duplicate parameters, Host, Range, method) as text and as bytes. Oracles: only
 * the statuses the server documents, never a 5xx, hang or error log; a 200/206 body is exactly the
 * object's bytes for the range asked, and nothing outside the root is ever served.
 */

const POD = "10.244.3.9:3000";
const seconds = fileBudgetSeconds();
const { log, errors } = errorCollectingLogger();
const work = mkdtempSync(join(tmpdir(), "app-snapshots-lvp-fuzz-"));
const key = randomBytes(16);
const OBJECTS: Record<string, Buffer> = { "backups/b1/b1.tar.gz": randomBytes(5000), "backups/b1/empty.json": Buffer.alloc(0), "a b/%41€": Buffer.from("odd key") };
const SECRET = "outside the root: never served";
let store: ObjectStore;
let server: RunningServer;

beforeAll(async () => {
  const root = join(work, "root");
  mkdirSync(join(root, "snapshots"), { recursive: true });
  mkdirSync(join(work, "outside"));
  writeFileSync(join(work, "outside", "secret"), SECRET);
  writeFileSync(join(work, "key"), key);
  store = await ObjectStore.open(root, { durability: "none" });
  for (const [name, bytes] of Object.entries(OBJECTS)) await store.put("snapshots", name, Readable.from([bytes]));
  symlinkSync(join(work, "outside"), join(root, "snapshots", "evil"));
  symlinkSync(join(work, "outside", "secret"), join(root, "snapshots", "leak"));
  server = await listen({ port: 0, handler: lvpHandler({ store, keys: keyFromFile(join(work, "key")), issuedHosts: [POD], log, metrics: createStorageMetrics(createMetricsRegistry({ defaultMetrics: false })) }) });
});
afterAll(async () => {
  await server?.close(1000);
  await store?.close();
  rmSync(work, { recursive: true, force: true });
});

const objectKey = fc.oneof(fc.constantFrom(...Object.keys(OBJECTS)), fc.constantFrom("missing", "evil/secret", "leak", "../outside/secret", "backups/../evil/secret", "backups/b1", ".app-snapshots/meta", "x".repeat(300)));
const expires = fc.oneof(fc.constant(new Date(Date.now() + 3_600_000)), fc.constant(new Date(Date.now() - 1000)), fc.constant(new Date(8.64e15)), fc.constant(new Date(0)));
const TEXT_EDITS = [
  (t: string) => t.replace("expires=", "expires=junk"),
  (t: string) => t.replace(/signature=[^&]*/, "signature="),
  (t: string) => t.replace(/signature=([^&]*)/, "signature=$1&signature=$1"),
  (t: string) => t.replace(/expires=([^&]*)/, "expires=$1&expires=2099-01-01T00%3A00%3A00.000Z"),
  (t: string) => t.replace("/snapshots/", "/snapshots//"),
  (t: string) => t.replace("/snapshots/", "/snapshots/%2e%2e/"),
  (t: string) => t.replace("/snapshots/", "/%73napshots/"),
  (t: string) => t.replace("?", "%3F"),
  (t: string) => t.replace("%3A", "%3a"),
  (t: string) => t.replace("%3A", "%zz"),
  (t: string) => `${t}&extra=1`,
  (t: string) => t.split("?")[0]!,
  (t: string) => `${t}#frag`,
];
const RANGES = [undefined, "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=100-50", "bytes=4999-", "bytes=5000-", "bytes=0-1,3-4", "bytes=x", "bytes=-0", "bytes=99999999999999999999-"];
const input = fc.record({
  key: objectKey,
  expires,
  host: fc.constantFrom(POD, "127.0.0.1", "evil.example:3000", ""),
  sendHost: fc.constantFrom("issued", "server", "none"),
  method: fc.constantFrom("GET", "HEAD", "GET", "PUT", "DELETE", "OPTIONS"),
  edits: fc.array(fc.integer({ min: 0, max: TEXT_EDITS.length - 1 }), { maxLength: 3 }),
  range: fc.constantFrom(...RANGES),
  bytes: fc.option(mutations, { freq: 4, nil: undefined }),
});
const EXPECTED = new Set([200, 206, 400, 403, 404, 405, 416]);

describe("LVP file server under fuzzing", () => {
  it("signed URLs mutated as text and bytes: documented statuses only, exact bytes, nothing from outside the root", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    await fuzz("lvp urls", seconds, input, async (shape) => {
      const url = lvpPluginSign(key, shape.host || POD, "snapshots", shape.key.split("/").map(encodeURIComponent).join("/"), shape.expires);
      let target = url.slice(url.indexOf("/", url.indexOf("//") + 2));
      for (const edit of shape.edits) target = TEXT_EDITS[edit]!(target);
      const hostHeader = shape.sendHost === "none" ? "" : `host: ${shape.sendHost === "issued" ? shape.host : `127.0.0.1:${server.port}`}\r\n`;
      const raw = Buffer.from(`${shape.method} ${target} HTTP/1.1\r\n${hostHeader}connection: close\r\n${shape.range ? `range: ${shape.range}\r\n` : ""}\r\n`, "utf8");
      const { response, statuses } = await exchange(server.port, shape.bytes ? applyMutations(raw, shape.bytes) : raw, { complete: !shape.bytes, head: shape.method === "HEAD" });
      expect(statuses.filter((s) => s >= 500), response?.text.slice(0, 200)).toEqual([]);
      expect(errors.splice(0), "the server logged an error").toEqual([]);
      if (!response) return;
      expect(response.text.includes(SECRET), "served a file outside the root").toBe(false);
      if (shape.bytes) return;
      expect(EXPECTED.has(response.status), `status ${response.status}: ${response.text.slice(0, 200)}`).toBe(true);
      if ((response.status === 200 || response.status === 206) && shape.method === "GET" && target.startsWith("/snapshots/")) {
        const object = OBJECTS[shape.key];
        expect(object, `served ${shape.key}, which is not a stored object`).toBeDefined();
        const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers["content-range"] ?? "");
        const expected = range ? object!.subarray(Number(range[1]), Number(range[2]) + 1) : object!;
        expect(response.body.equals(expected), "the body is not the object's bytes").toBe(true);
      }
    });
  });
});
