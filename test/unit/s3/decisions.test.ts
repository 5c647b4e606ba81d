import fc from "fast-check";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, vi } from "vitest";
import { copySourceRange, parseCopySource } from "../../../src/s3/copySource.js";
import { S3Error } from "../../../src/s3/errors.js";
import { checkLocationConstraint, pageOfBuckets } from "../../../src/s3/handlers/bucketHandlers.js";
import { KeepAliveAnswer } from "../../../src/s3/handlers/keepAlive.js";
import { compositeChecksum, uploadChecksumOf } from "../../../src/s3/multipartChecksums.js";
import { partRange } from "../../../src/s3/objectParts.js";
import { checkWriteCondition, readPrecondition, writeConditionOf } from "../../../src/s3/preconditions.js";
import { s3ErrorOf } from "./s3ErrorOf.js";

const T = new Date("2026-01-01T00:00:10.500Z");
const before = "Thu, 01 Jan 2026 00:00:00 GMT";
const after = "Thu, 01 Jan 2026 00:01:00 GMT";

describe("read preconditions (RFC 9110 section 13.2.2, as S3 applies them)", () => {
  it.each([
    [{ ifMatch: '"e"' }, "proceed"],
    [{ ifMatch: '"x"' }, 412],
    [{ ifMatch: "*" }, "proceed"],
    [{ ifNoneMatch: '"e"' }, 304],
    [{ ifNoneMatch: '"x", W/"e"' }, 304],
    [{ ifModifiedSince: after }, 304],
    [{ ifModifiedSince: before }, "proceed"],
    [{ ifUnmodifiedSince: before }, 412],
    // If-Match true wins over If-Unmodified-Since false; If-None-Match false wins over If-Modified-Since true.
    [{ ifMatch: '"e"', ifUnmodifiedSince: before }, "proceed"],
    [{ ifNoneMatch: '"x"', ifModifiedSince: after }, "proceed"],
    [{ ifModifiedSince: "not a date" }, "proceed"],
  ] as const)("%j → %s", (headers, outcome) => {
    expect(readPrecondition(headers, { etag: "e", lastModified: T })).toBe(outcome);
  });
});

describe("write conditions", () => {
  it("If-None-Match accepts only *, If-Match one ETag", () => {
    expect(writeConditionOf(undefined, "*")).toEqual({ ifAbsent: true });
    expect(writeConditionOf('"abc"', undefined)).toEqual({ ifEtag: "abc" });
    expect(s3ErrorOf(() => writeConditionOf(undefined, '"abc"')).code).toBe("NotImplemented");
    expect(s3ErrorOf(() => writeConditionOf('"a", "b"', undefined)).code).toBe("InvalidArgument");
    expect(writeConditionOf(undefined, undefined)).toBeUndefined();
  });
  it("412 when the key exists (If-None-Match) or has another ETag (If-Match); 404 when If-Match finds nothing", () => {
    expect(s3ErrorOf(() => checkWriteCondition({ ifAbsent: true }, { etag: "a" })).status).toBe(412);
    expect(() => checkWriteCondition({ ifAbsent: true }, undefined)).not.toThrow();
    expect(s3ErrorOf(() => checkWriteCondition({ ifEtag: "a" }, { etag: "b" })).status).toBe(412);
    expect(s3ErrorOf(() => checkWriteCondition({ ifEtag: "a" }, undefined)).code).toBe("NoSuchKey");
    expect(() => checkWriteCondition({ ifEtag: "a" }, { etag: "a" })).not.toThrow();
  });
});

describe("copy sources and ranges", () => {
  it("parses /bucket/key and bucket/key with encoded keys", () => {
    expect(parseCopySource("/bkt/a%20b/c")).toEqual({ bucket: "bkt", key: "a b/c" });
    expect(parseCopySource("bkt/k?versionId=null")).toEqual({ bucket: "bkt", key: "k" });
    expect(s3ErrorOf(() => parseCopySource("bkt")).code).toBe("InvalidArgument");
    expect(s3ErrorOf(() => parseCopySource("bkt/k?versionId=3")).code).toBe("NotImplemented");
  });
  it("accepts exactly bytes=first-last inside the source, for any size (property)", () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.nat(12_000), fc.nat(12_000), (size, first, last) => {
        const header = `bytes=${first}-${last}`;
        if (last < first) expect(s3ErrorOf(() => copySourceRange(header, size)).code).toBe("InvalidArgument");
        else if (last >= size) expect(s3ErrorOf(() => copySourceRange(header, size)).code).toBe("InvalidRange");
        else expect(copySourceRange(header, size)).toEqual({ start: first, end: last });
      }),
    );
    for (const bad of ["bytes=1-", "bytes=-1", "bytes 0-1", "bytes=0-1,2-3", "bytes=a-b", `bytes=0-${"9".repeat(30)}`]) {
      expect(s3ErrorOf(() => copySourceRange(bad, 100)).code, bad).toBe("InvalidArgument");
    }
    expect(copySourceRange(undefined, 10)).toEqual({ start: 0, end: 9 });
  });
});

describe("parts of an object", () => {
  it("part N of a multipart object, part 1 of a single-part one, 416 past the end, 400 for a bad number", () => {
    expect(partRange("2", [5, 5, 3], 13)).toEqual({ start: 5, end: 9, count: 3 });
    expect(partRange("3", [5, 5, 3], 13)).toEqual({ start: 10, end: 12, count: 3 });
    expect(partRange("1", undefined, 7)).toEqual({ start: 0, end: 6, count: 1 });
    expect(s3ErrorOf(() => partRange("4", [5, 5, 3], 13))).toMatchObject({ code: "InvalidPartNumber", status: 416 });
    expect(s3ErrorOf(() => partRange("2", undefined, 7)).code).toBe("InvalidPartNumber");
    for (const bad of ["0", "10001", "x", "1.5", ""]) expect(s3ErrorOf(() => partRange(bad, undefined, 7)).code, bad).toBe("InvalidArgument");
  });
});

describe("ListBuckets pages and CreateBucket locations", () => {
  it("pages names by max-buckets and continuation token, whatever the page size (property)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{3,8}$/), { maxLength: 20 }), fc.integer({ min: 1, max: 5 }), (unsorted, max) => {
        const names = [...unsorted].sort();
        const seen: string[] = [];
        let token: string | undefined;
        for (let pages = 0; pages <= names.length; pages++) {
          const page = pageOfBuckets(names, { maxBuckets: String(max), continuationToken: token });
          expect(page.names.length).toBeLessThanOrEqual(max);
          seen.push(...page.names);
          token = page.nextToken;
          if (!token) break;
        }
        expect(seen).toEqual(names);
      }),
    );
    for (const bad of ["0", "10001", "-1", "x"]) expect(s3ErrorOf(() => pageOfBuckets(["a"], { maxBuckets: bad })).code).toBe("InvalidArgument");
  });
  it("accepts no constraint or the server's region; refuses other regions and invalid names", () => {
    expect(() => checkLocationConstraint(undefined, "")).not.toThrow();
    expect(() => checkLocationConstraint("us-east-1", "")).not.toThrow();
    expect(() => checkLocationConstraint("eu-west-3", "eu-west-3")).not.toThrow();
    expect(s3ErrorOf(() => checkLocationConstraint("eu-west-3", "")).code).toBe("IllegalLocationConstraintException");
    expect(s3ErrorOf(() => checkLocationConstraint("nowhere", "")).code).toBe("InvalidLocationConstraint");
  });
});

describe("multipart checksums", () => {
  it("composite values follow S3: the checksum of the raw part checksums, -N", async () => {
    const raw = Buffer.alloc(4);
    raw.writeUInt32BE(crc32(Buffer.from("0000000100000002", "hex")));
    expect(await compositeChecksum("crc32", ["AAAAAQ==", "AAAAAg=="])).toBe(`${raw.toString("base64")}-2`);
    expect(await compositeChecksum("sha256", ["AAAAAQ=="])).toBe(`${createHash("sha256").update(Buffer.from("00000001", "hex")).digest("base64")}-1`);
  });
  it("applies S3's algorithm and type rules at CreateMultipartUpload", () => {
    expect(uploadChecksumOf("CRC32", undefined)).toEqual({ algorithm: "crc32", type: "COMPOSITE" });
    expect(uploadChecksumOf("CRC64NVME", undefined)).toEqual({ algorithm: "crc64nvme", type: "FULL_OBJECT" });
    expect(uploadChecksumOf("crc32c", "FULL_OBJECT")).toEqual({ algorithm: "crc32c", type: "FULL_OBJECT" });
    expect(s3ErrorOf(() => uploadChecksumOf("SHA256", "FULL_OBJECT")).code).toBe("InvalidRequest");
    expect(s3ErrorOf(() => uploadChecksumOf("CRC64NVME", "COMPOSITE")).code).toBe("InvalidRequest");
    expect(s3ErrorOf(() => uploadChecksumOf(undefined, "COMPOSITE")).code).toBe("InvalidRequest");
    expect(s3ErrorOf(() => uploadChecksumOf("MD5", undefined)).code).toBe("InvalidRequest");
  });
});

describe("KeepAliveAnswer", () => {
  async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it("answers normally when the work ends before the delay", async () => {
    const server = await serve((_req, res) => {
      const answer = new KeepAliveAnswer(res, { firstAfterMs: 60_000, everyMs: 60_000 });
      answer.start();
      answer.finish('<?xml version="1.0" encoding="UTF-8"?>\n<Done/>');
    });
    const reply = await fetch(server.url);
    expect([reply.status, reply.headers.get("content-length"), await reply.text()]).toEqual([200, "46", '<?xml version="1.0" encoding="UTF-8"?>\n<Done/>']);
    await server.close();
  });

  it("sends 200, the declaration and whitespace while the work runs, then the document or an <Error>", async () => {
    for (const outcome of ["done", "failed"] as const) {
      let finish: () => void = () => undefined;
      const server = await serve((_req, res) => {
        const answer = new KeepAliveAnswer(res, { firstAfterMs: 0, everyMs: 1 });
        answer.start();
        finish = () =>
          outcome === "done"
            ? answer.finish('<?xml version="1.0" encoding="UTF-8"?>\n<Done/>')
            : answer.fail(new S3Error("InternalError", "it broke"), (e) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code></Error>`);
      });
      const received: Buffer[] = [];
      const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get(server.url, (res) => {
          res.on("data", (c: Buffer) => received.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(received).toString() }));
        }).on("error", reject);
      });
      // Whitespace arrives while the work is still running (no timing assumed: wait until it has).
      await vi.waitFor(() => expect(Buffer.concat(received).toString()).toMatch(/\?>\n +$/), { timeout: 10_000, interval: 5 });
      finish();
      const { status, body } = await done;
      expect(status).toBe(200);
      expect(body).toMatch(outcome === "done" ? /^<\?xml[^>]*\?>\n +<Done\/>$/ : /^<\?xml[^>]*\?>\n +<Error><Code>InternalError<\/Code><\/Error>$/);
      await server.close();
    }
  });
});
