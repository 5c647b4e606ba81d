import { lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INTERNAL_DIR, keyDigest } from "../../../src/storage/layout.js";
import { ObjectStore } from "../../../src/storage/store.js";

let root: string;
let store: ObjectStore;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "app-snapshots-concurrent-"));
  store = await ObjectStore.open(root);
  await store.createBucket("bkt");
});
afterAll(async () => {
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

const body = (text: string) => Readable.from([Buffer.from(text)]);

/** The metadata records of `key`, and the one its current file should have (undefined when there is no file). */
function recordsOf(key: string): { records: string[]; current: string | undefined } {
  const digest = keyDigest(key);
  const shard = join(root, INTERNAL_DIR, "meta", "bkt", digest.slice(0, 2));
  const records = readdirSync(shard, { withFileTypes: true }).filter((d) => d.name.startsWith(`${digest}.`)).map((d) => d.name);
  const file = (() => {
    try {
      return lstatSync(join(root, "bkt", key), { bigint: true });
    } catch {
      return undefined;
    }
  })();
  return { records, current: file && `${digest}.${file.ino}.json` };
}

describe("concurrent writes and deletes of one key", () => {
  it("leave exactly the record of the version that won: none of a replaced or deleted one (overlapping publishes removed the wrong record)", async () => {
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 6 }, (_, i) => store.put("bkt", "k", body(`round ${round} writer ${i}`))));
      const afterPuts = recordsOf("k");
      expect(afterPuts.records, `round ${round}: puts`).toEqual([afterPuts.current]);

      await Promise.all([store.put("bkt", "d", body("x")), store.delete("bkt", "d"), store.put("bkt", "d", body("yy")), store.delete("bkt", "d"), store.put("bkt", "d", body("zzz"))]);
      const afterMixed = recordsOf("d");
      expect(afterMixed.records, `round ${round}: puts and deletes`).toEqual(afterMixed.current ? [afterMixed.current] : []);
      await store.delete("bkt", "d");
      expect(recordsOf("d").records).toEqual([]);
    }
  });
});
