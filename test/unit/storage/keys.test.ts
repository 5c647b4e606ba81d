import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucketNameProblem, keyProblem, MAX_KEY_BYTES } from "../../../src/storage/keys.js";
import { parseListenAddress } from "../../../src/server/listenAddress.js";
import { decideRange } from "../../../src/storage/range.js";

describe("object keys", () => {
  it.each([
    ["backups/b1/b1.tar.gz"],
    ["kopia/default/p0123456789abcdef"],
    ["a"],
    ["with space/and+plus/und ümlaut/😀"],
    ["..hidden/.dotfile/x..y"],
    ["back\\slash"],
    // Folder markers (rclone --s3-directory-markers, "create folder" in S3 browsers).
    ["dir/"],
    ["a/b/"],
  ])("accepts %j", (key) => {
    expect(keyProblem(key)).toBeUndefined();
  });

  it.each([
    ["", "the key is empty"],
    ["/abs", "the key starts with '/'"],
    ["/", "the key starts with '/'"],
    ["a//", "the key has an empty segment 2 ('//')"],
    ["a/.app-snapshots-folder", 'the key\'s segment 2 is ".app-snapshots-folder", the name the store reserves for folder markers'],
    ["../", "the key's segment 1 is \"..\"; '.' and '..' segments are not allowed"],
    ["a//b", "the key has an empty segment 2 ('//')"],
    ["a/../b", "the key's segment 2 is \"..\"; '.' and '..' segments are not allowed"],
    ["..", "the key's segment 1 is \"..\"; '.' and '..' segments are not allowed"],
    ["./a", "the key's segment 1 is \".\"; '.' and '..' segments are not allowed"],
    ["a\0b", "the key contains a NUL character"],
    ["a\ud800b", "the key is not valid Unicode (it contains an unpaired surrogate)"],
    [`${"x".repeat(256)}/y`, "the key's segment 1 is 256 bytes long; the filesystem limit is 255"],
    ["ü".repeat(513), `the key is 1026 bytes long; the limit is ${MAX_KEY_BYTES}`],
  ])("rejects %j with a precise reason", (key, reason) => {
    expect(keyProblem(key)).toBe(reason);
  });

  it("accepted keys always stay below their bucket: no empty, '.' or '..' segment, no NUL, bounded length", () => {
    const hostile = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.array(fc.constantFrom("..", ".", "", "a", "%2e%2e", "\0", "/", "\\", "ü", "\ud800", "x".repeat(300)), { maxLength: 8 }).map((parts) => parts.join("/")),
    );
    fc.assert(
      fc.property(hostile, (key) => {
        if (keyProblem(key) !== undefined) return;
        const segments = (key.endsWith("/") ? key.slice(0, -1) : key).split("/");
        expect(segments.every((s) => s !== "" && s !== "." && s !== ".." && s !== ".app-snapshots-folder")).toBe(true);
        expect(key.includes("\0")).toBe(false);
        expect(Buffer.byteLength(key)).toBeLessThanOrEqual(MAX_KEY_BYTES);
        // The key survives a UTF-8 round trip, so two keys never name one file.
        expect(Buffer.from(key).toString()).toBe(key);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("bucket names", () => {
  it.each(["velero", "hostpath-snapshots", "a.b-c", "abc", "x".repeat(63)])("accepts %j", (name) => {
    expect(bucketNameProblem(name)).toBeUndefined();
  });

  it.each([
    ["ab", 'bucket name "ab" must be 3 to 63 characters long'],
    [".app-snapshots", "bucket name \".app-snapshots\" may contain only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"],
    ["lost+found", "bucket name \"lost+found\" may contain only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"],
    ["Upper", "bucket name \"Upper\" may contain only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"],
    ["a..b", 'bucket name "a..b" must not contain ".."'],
    ["192.168.1.1", 'bucket name "192.168.1.1" must not look like an IP address'],
  ])("rejects %j", (name, reason) => {
    expect(bucketNameProblem(name)).toBe(reason);
  });
});

describe("HTTP Range", () => {
  it.each([
    [undefined, 100, { kind: "full" }],
    ["bytes=0-9", 100, { kind: "partial", start: 0, end: 9 }],
    ["bytes=90-", 100, { kind: "partial", start: 90, end: 99 }],
    ["bytes=90-500", 100, { kind: "partial", start: 90, end: 99 }],
    ["bytes=-10", 100, { kind: "partial", start: 90, end: 99 }],
    ["bytes=-500", 100, { kind: "partial", start: 0, end: 99 }],
    ["bytes=100-", 100, { kind: "unsatisfiable" }],
    ["bytes=-0", 100, { kind: "unsatisfiable" }],
    ["bytes=0-", 0, { kind: "unsatisfiable" }],
    ["bytes=9-0", 100, { kind: "full" }],
    ["bytes=0-1,5-6", 100, { kind: "full" }],
    ["items=0-1", 100, { kind: "full" }],
    ["bytes=-", 100, { kind: "full" }],
    ["bytes=abc", 100, { kind: "full" }],
  ])("%j of %i bytes → %j", (header, size, decision) => {
    expect(decideRange(header, size)).toEqual(decision);
  });

  it("agrees with a model of RFC 9110 single ranges", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1000 }), fc.option(fc.nat({ max: 1200 })), fc.option(fc.nat({ max: 1200 })), (size, first, last) => {
        if (first === null && last === null) return;
        const header = `bytes=${first ?? ""}-${last ?? ""}`;
        const decision = decideRange(header, size);
        if (first === null) {
          // suffix
          if (last === 0 || size === 0) expect(decision).toEqual({ kind: "unsatisfiable" });
          else expect(decision).toEqual({ kind: "partial", start: Math.max(0, size - last!), end: size - 1 });
        } else if (last !== null && last < first) {
          expect(decision).toEqual({ kind: "full" });
        } else if (first >= size) {
          expect(decision).toEqual({ kind: "unsatisfiable" });
        } else {
          expect(decision).toEqual({ kind: "partial", start: first, end: Math.min(last ?? size - 1, size - 1) });
        }
        if (decision.kind === "partial") {
          expect(decision.start).toBeGreaterThanOrEqual(0);
          expect(decision.end).toBeLessThan(size);
          expect(decision.start).toBeLessThanOrEqual(decision.end);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws on arbitrary headers", () => {
    fc.assert(
      fc.property(fc.string(), fc.nat(), (header, size) => {
        expect(["full", "partial", "unsatisfiable"]).toContain(decideRange(header, size).kind);
      }),
    );
  });
});

describe("listen addresses", () => {
  it.each([
    [":3000", { host: undefined, port: 3000 }],
    ["3000", { host: undefined, port: 3000 }],
    ["127.0.0.1:3000", { host: "127.0.0.1", port: 3000 }],
    ["[::1]:9000", { host: "::1", port: 9000 }],
    ["0.0.0.0:0", { host: "0.0.0.0", port: 0 }],
  ])("%j", (text, address) => {
    expect(parseListenAddress(text)).toEqual(address);
  });

  it.each(["", ":", "host", ":70000", "::1:3000", "a:b:3000"])("rejects %j", (text) => {
    expect(() => parseListenAddress(text)).toThrow(/is not a listen address/);
  });
});
