import fc from "fast-check";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FOLDER_MARKER } from "../../../src/storage/keys.js";
import { listObjects, type ListOptions } from "../../../src/storage/listing.js";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A bucket folder holding `keys` as files, plus things that must never be listed. */
function bucketWith(keys: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "app-snapshots-list-"));
  roots.push(dir);
  for (const key of keys) {
    // A folder marker ("a/") is a reserved file name inside its folder, as the store writes it.
    const file = key.endsWith("/") ? join(dir, key, FOLDER_MARKER) : join(dir, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, key);
  }
  mkdirSync(join(dir, "lost+found"), { recursive: true });
  mkdirSync(join(dir, "empty", "deeper"), { recursive: true });
  symlinkSync("/etc", join(dir, "link-to-etc"));
  symlinkSync("/etc/hostname", join(dir, "link-to-file"));
  return dir;
}

type Item = string; // "o:<key>" or "p:<prefix>"

/** The S3 semantics, straight from the definition: sort by UTF-8 bytes, filter, roll up, paginate. */
function model(keys: readonly string[], options: ListOptions): Item[] {
  const prefix = options.prefix ?? "";
  const after = Buffer.from(options.startAfter ?? "");
  const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const items: Item[] = [];
  for (const key of sorted) {
    if (!key.startsWith(prefix) || Buffer.compare(Buffer.from(key), after) <= 0) continue;
    const at = options.delimiter ? key.indexOf(options.delimiter, prefix.length) : -1;
    const item = at >= 0 ? `p:${key.slice(0, at + options.delimiter!.length)}` : `o:${key}`;
    // The bound applies to prefixes too: one at or before it was listed already (S3 never repeats a CommonPrefix).
    if (at >= 0 && Buffer.compare(Buffer.from(item.slice(2)), after) <= 0) continue;
    if (items.at(-1) !== item) items.push(item);
  }
  return items;
}

async function listAll(dir: string, options: ListOptions): Promise<{ items: Item[]; pages: number }> {
  const items: Item[] = [];
  let token: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await listObjects(dir, { ...options, ...(token ? { continuationToken: token } : {}) });
    pages++;
    // Objects and prefixes interleave in key order; merge the page's two lists back into one sequence.
    const merged = [...page.objects.map((o) => `o:${o.key}`), ...page.commonPrefixes.map((p) => `p:${p}`)].sort((a, b) => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2))));
    expect(merged.length).toBeLessThanOrEqual(options.maxKeys ?? 1000);
    items.push(...merged);
    if (!page.isTruncated) {
      expect(page.nextContinuationToken).toBeUndefined();
      return { items, pages };
    }
    expect(page.nextContinuationToken).toBeDefined();
    token = page.nextContinuationToken;
  }
}

const segment = fc.constantFrom("a", "b", "a-b", "a.b", "ab", "a b", "ü", "😀", "\uffef", "B", "0", "a~");
const keySet = fc
  .uniqueArray(
    fc.tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([s, marker]) => `${s.join("/")}${marker && s.length < 4 ? "/" : ""}`),
    { minLength: 0, maxLength: 30 },
  )
  // A key cannot also be a directory of other keys (a/b and a/b/c): the store refuses that.
  .map((keys) => keys.filter((k) => !keys.some((other) => other.startsWith(`${k}/`))));

describe("listing over a directory tree", () => {
  it("matches the S3 model for any prefix, delimiter, bound and page size", async () => {
    await fc.assert(
      fc.asyncProperty(
        keySet,
        fc.array(
          fc.record({
            prefix: fc.option(fc.constantFrom("", "a", "a/", "a-", "ü", "a/b", "b/", "😀/a"), { nil: undefined }),
            delimiter: fc.option(fc.constantFrom("/", "-", "b", "/a"), { nil: undefined }),
            startAfter: fc.option(fc.constantFrom("a", "a/", "a/b", "b", "ü/😀", "zzz"), { nil: undefined }),
            maxKeys: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (keys, queries) => {
          const dir = bucketWith(keys);
          for (const query of queries) {
            const options: ListOptions = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
            const { items } = await listAll(dir, options);
            expect(items).toEqual(model(keys, options));
          }
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 60 },
    );
  });

  it("pages by marker (ListObjects v1 NextMarker, ListObjectVersions NextKeyMarker) exactly like one full listing, never repeating a prefix", async () => {
    await fc.assert(
      fc.asyncProperty(
        keySet,
        fc.option(fc.constantFrom("", "a", "a/", "ü", "b/"), { nil: undefined }),
        fc.constantFrom("/", "-", "b", "/a"),
        fc.integer({ min: 1, max: 4 }),
        async (keys, prefix, delimiter, maxKeys) => {
          const dir = bucketWith(keys);
          const whole = model(keys, { prefix, delimiter });
          const items: Item[] = [];
          let marker: string | undefined;
          for (let pages = 0; ; pages++) {
            // Bounded: a listing that repeats itself fails here instead of hanging.
            expect(pages).toBeLessThanOrEqual(whole.length);
            const page = await listObjects(dir, { prefix, delimiter, maxKeys, ...(marker === undefined ? {} : { startAfter: marker }) });
            const merged = [...page.objects.map((o) => `o:${o.key}`), ...page.commonPrefixes.map((p) => `p:${p}`)].sort((a, b) => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2))));
            items.push(...merged);
            if (!page.isTruncated) break;
            // NextMarker: the last key or common prefix of the page.
            marker = merged.at(-1)!.slice(2);
          }
          expect(items).toEqual(whole);
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 80 },
    );
  });

  it("lists 1,001 folders as 1,001 common prefixes when paged by marker with max-keys 1000 and 1", async () => {
    const folders = Array.from({ length: 1001 }, (_, i) => `f${String(i).padStart(4, "0")}/x`);
    const dir = bucketWith(folders);
    for (const maxKeys of [1000, 1]) {
      const prefixes: string[] = [];
      let marker: string | undefined;
      for (let pages = 0; pages <= 1001; pages++) {
        const page = await listObjects(dir, { delimiter: "/", maxKeys, ...(marker === undefined ? {} : { startAfter: marker }) });
        prefixes.push(...page.commonPrefixes);
        if (!page.isTruncated) break;
        marker = page.commonPrefixes.at(-1);
      }
      expect(prefixes.filter((p) => p.startsWith("f"))).toEqual(folders.map((f) => f.slice(0, 6)));
    }
  });

  it("lists a folder marker as its key, before the keys below it, and rolls it into its common prefix", async () => {
    const dir = bucketWith(["photos/", "photos/2024/", "photos/2024/a.jpg", "photos/b.jpg", "z"]);
    expect((await listObjects(dir, {})).objects.map((o) => [o.key, o.size])).toEqual([
      ["photos/", 7],
      ["photos/2024/", 12],
      ["photos/2024/a.jpg", 17],
      ["photos/b.jpg", 12],
      ["z", 1],
    ]);
    const top = await listObjects(dir, { delimiter: "/" });
    expect([top.commonPrefixes, top.objects.map((o) => o.key)]).toEqual([["photos/"], ["z"]]);
    const inside = await listObjects(dir, { prefix: "photos/", delimiter: "/" });
    expect([inside.commonPrefixes, inside.objects.map((o) => o.key)]).toEqual([["photos/2024/"], ["photos/", "photos/b.jpg"]]);
    // A folder holding only its marker is still a prefix.
    const only = bucketWith(["empty-folder/"]);
    expect((await listObjects(only, { delimiter: "/" })).commonPrefixes).toEqual(["empty-folder/"]);
  });

  it("lists keys in UTF-8 byte order, not JavaScript (UTF-16) order", async () => {
    // U+FFEF sorts before U+1F600 in UTF-16 code units (0xFFEF > 0xD83D is false), after it in UTF-8 bytes.
    const keys = ["\uffef", "😀", "a"];
    const dir = bucketWith(keys);
    const page = await listObjects(dir, {});
    expect(page.objects.map((o) => o.key)).toEqual(["a", "\uffef", "😀"]);
    expect([...keys].sort()).toEqual(["a", "😀", "\uffef"]);
  });

  it("never lists symlinks, lost+found, NFS silly renames, empty directories or names that are not keys; reports sizes from the files", async () => {
    const dir = bucketWith(["backups/b1/b1.tar.gz", "kopia/x"]);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x6f])]), "not UTF-8");
    writeFileSync(join(dir, "backups", ".nfs000000000012d68700000001"), "NFS silly rename of a file deleted while open");
    const flat = await listObjects(dir, {});
    expect(flat.objects.map((o) => [o.key, o.size])).toEqual([
      ["backups/b1/b1.tar.gz", 20],
      ["kopia/x", 7],
    ]);
    const top = await listObjects(dir, { delimiter: "/" });
    expect(top.commonPrefixes).toEqual(["backups/", "kopia/"]);
    expect(top.objects).toEqual([]);
  });

  it("rejects continuation tokens it did not issue", async () => {
    const dir = bucketWith(["a"]);
    await expect(listObjects(dir, { continuationToken: "not base64url!" })).rejects.toThrow(/continuation token/);
  });

  it("pages through 10k keys under a prefix without reading their contents", async () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `kopia/p${String(i).padStart(5, "0")}`);
    const dir = bucketWith([...keys, "backups/x"]);
    const { items, pages } = await listAll(dir, { prefix: "kopia/", delimiter: "/" });
    expect(items).toEqual(keys.map((k) => `o:${k}`));
    expect(pages).toBe(10);
  });
});
