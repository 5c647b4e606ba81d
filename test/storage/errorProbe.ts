// Child program for the storage error tests: runs one store scenario in a process whose
// privileges or filesystem differ from the test runner's, and prints what happened as JSON.
// Usage: node errorProbe.js <root> <scenario>
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { StorageError } from "../../src/storage/errors.js";
import { INTERNAL_DIR } from "../../src/storage/layout.js";
import { ObjectStore } from "../../src/storage/store.js";

const [root, scenario] = process.argv.slice(2) as [string, string];

function describe(err: unknown): object {
  return err instanceof StorageError ? { code: err.code, message: err.message, path: err.path } : { unexpected: String(err) };
}

function tempFiles(): string[] {
  const tmp = join(root, INTERNAL_DIR, "tmp");
  return readdirSync(tmp).flatMap((dir) => readdirSync(join(tmp, dir)).map((f) => `${dir}/${f}`));
}

async function readAll(store: ObjectStore, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await store.open("velero", key)).stream()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function main(): Promise<object> {
  if (scenario === "open") {
    try {
      await ObjectStore.open(root);
      return { opened: true };
    } catch (err) {
      return describe(err);
    }
  }
  const store = await ObjectStore.open(root);
  try {
    if (scenario === "disk-full") {
      await store.createBucket("velero");
      await store.put("velero", "backups/b1/b1.tar.gz", Readable.from([Buffer.from("the previous version")]));
      // More than the filesystem holds, in 1 MiB chunks.
      const chunks = (function* () {
        for (let i = 0; i < 16; i++) yield Buffer.alloc(1024 * 1024, i);
      })();
      const error = await store.put("velero", "backups/b1/b1.tar.gz", Readable.from(chunks)).then(() => ({ unexpected: "the write succeeded" }), describe);
      return { error, previous: await readAll(store, "backups/b1/b1.tar.gz"), temp: tempFiles() };
    }
    if (scenario === "read-only-bucket") {
      const error = await store.put("velero", "backups/b1/b1.tar.gz", Readable.from([Buffer.from("x")])).then(() => ({ unexpected: "the write succeeded" }), describe);
      const listing = await store.list("velero");
      return { error, objects: listing.objects.map((o) => o.key), temp: tempFiles() };
    }
    throw new Error(`unknown scenario ${scenario}`);
  } finally {
    await store.close();
  }
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
