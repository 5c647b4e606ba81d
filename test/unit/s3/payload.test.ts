import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChunkedEncodingError } from "../../../src/s3/awsChunked.js";
import { S3Error, toS3Error } from "../../../src/s3/errors.js";
import { CHECKSUM_ALGORITHMS, incomingBody, type BodyRequest, type ChecksumAlgorithm, type IncomingBody } from "../../../src/s3/payload.js";
import { parseQuery } from "../../../src/s3/routing.js";
import { authenticate, EMPTY_SHA256, UNSIGNED_PAYLOAD, type AuthContext } from "../../../src/s3/sigv4.js";
import type { HashAlgorithm } from "../../../src/storage/hashPool.js";
import { ACCESS_KEY, SECRET_KEY } from "../../s3/harness.js";
import { signedChunkedPut, unsignedTrailerBody, type RawRequest } from "../../s3/signer.js";
import { s3ErrorOf } from "./s3ErrorOf.js";

const AUTH: AuthContext = {
  accessKey: ACCESS_KEY,
  region: "us-east-1",
  longDate: "20261122T101500Z",
  scope: "20261122/us-east-1/s3/aws4_request",
  signature: "0".repeat(64),
  signingKey: Buffer.alloc(32),
  presigned: false,
};
const PRESIGNED: AuthContext = { ...AUTH, presigned: true };
const MAX = 1000;
const NOW = new Date("2026-11-22T10:15:00Z");
const HOST = "127.0.0.1:9000";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest();
const crc32Of = (data: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data));
  return out;
};
const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

function request(headers: Record<string, string>, body: Buffer | Buffer[] = []): BodyRequest {
  const lower = new Map(Object.entries(headers).map(([n, v]) => [n.toLowerCase(), v]));
  return { header: (name) => lower.get(name), stream: Readable.from(Array.isArray(body) ? body : [body]) };
}


async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** What the store does with an IncomingBody: read it all, compute the digests it asks for, call verify. */
async function store(incoming: IncomingBody, digestsOverride?: Partial<Record<HashAlgorithm, Buffer>>): Promise<Buffer> {
  const bytes = await readAll(incoming.body);
  const digests: Partial<Record<HashAlgorithm, Buffer>> = {};
  for (const algorithm of incoming.options.digests ?? []) {
    if (algorithm === "sha256") digests.sha256 = sha256(bytes);
    else if (algorithm === "crc32") digests.crc32 = crc32Of(bytes);
    else if (algorithm === "sha1") digests.sha1 = createHash("sha1").update(bytes).digest();
  }
  await incoming.options.verify!({ bytes: bytes.length, digests: { ...digests, ...digestsOverride } });
  return bytes;
}

/** The header function and stream of a RawRequest from test/s3/signer.ts, as server.ts builds them. */
function fromRaw(raw: RawRequest): BodyRequest {
  return request(raw.headers, Array.isArray(raw.body) ? raw.body : raw.body ? [raw.body] : []);
}

async function authOf(raw: RawRequest): Promise<AuthContext> {
  const headers = new Map(Object.entries(raw.headers).map(([n, v]) => [n.toLowerCase(), v]));
  const q = raw.target.indexOf("?");
  return authenticate(
    { method: raw.method, rawPath: q < 0 ? raw.target : raw.target.slice(0, q), query: parseQuery(q < 0 ? "" : raw.target.slice(q + 1)), header: (n) => headers.get(n) },
    new Map([[ACCESS_KEY, SECRET_KEY]]),
    NOW,
  );
}

describe("incomingBody: x-amz-content-sha256 modes", () => {
  it("refuses a header-authenticated request without x-amz-content-sha256 (InvalidRequest)", () => {
    const err = s3ErrorOf(() => incomingBody(request({ "content-length": "3" }), AUTH, MAX));
    expect(err.code).toBe("InvalidRequest");
    expect(err.status).toBe(400);
    expect(err.message).toBe("Missing required header for this request: x-amz-content-sha256");
  });

  it("treats a presigned request without x-amz-content-sha256 as UNSIGNED-PAYLOAD", async () => {
    const incoming = incomingBody(request({ "content-length": "3" }, Buffer.from("abc")), PRESIGNED, MAX);
    expect(incoming.options.digests).toEqual([]);
    expect(incoming.options.expectedSize).toBe(3);
    expect((await store(incoming)).toString()).toBe("abc");
  });

  it("passes an UNSIGNED-PAYLOAD body through untouched, with nothing to verify", async () => {
    const incoming = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-length": "5" }, [Buffer.from("he"), Buffer.from("llo")]), AUTH, MAX);
    expect(incoming.options).toMatchObject({ digests: [], expectedSize: 5, expectedMd5: undefined, checksums: {} });
    expect(incoming.contentEncoding).toBeUndefined();
    expect((await store(incoming)).toString()).toBe("hello");
    expect(incoming.options.checksums).toEqual({});
  });

  it("checks a hex SHA-256 payload hash: match passes, mismatch is XAmzContentSHA256Mismatch", async () => {
    const body = Buffer.from("some payload");
    const good = incomingBody(request({ "x-amz-content-sha256": sha256(body).toString("hex") }, body), AUTH, MAX);
    expect(good.options.digests).toEqual(["sha256"]);
    await expect(store(good)).resolves.toEqual(body);

    const bad = incomingBody(request({ "x-amz-content-sha256": EMPTY_SHA256 }, body), AUTH, MAX);
    const err = await store(bad).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(S3Error);
    expect((err as S3Error).code).toBe("XAmzContentSHA256Mismatch");
    expect((err as S3Error).status).toBe(400);
    expect((err as S3Error).message).toBe("The provided 'x-amz-content-sha256' header does not match what was computed.");
  });

  it("checks the SHA-256 of any body against the declared one (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 2000 }), async (a, b) => {
        const body = Buffer.from(a);
        const declared = sha256(Buffer.from(b)).toString("hex");
        const incoming = incomingBody(request({ "x-amz-content-sha256": declared, "content-length": String(body.length) }, body), AUTH, 1 << 20);
        const outcome = await store(incoming).then(
          () => "stored",
          (e: unknown) => (e as S3Error).code,
        );
        expect(outcome).toBe(Buffer.from(a).equals(Buffer.from(b)) ? "stored" : "XAmzContentSHA256Mismatch");
      }),
      { numRuns: 200 },
    );
  });

  it("refuses values that are no mode (InvalidArgument)", () => {
    for (const value of ["", "unsigned-payload", EMPTY_SHA256.toUpperCase(), EMPTY_SHA256.slice(1), `${EMPTY_SHA256}0`, "STREAMING-UNKNOWN-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD ", "sha256"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": value, "x-amz-decoded-content-length": "1" }), AUTH, MAX));
      expect([value, err.code]).toEqual([value, "InvalidArgument"]);
      expect(err.message).toBe("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… mode, or the hex SHA-256 of the payload");
    }
  });

  it("refuses SigV4a streaming payloads (NotImplemented)", () => {
    for (const value of ["STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": value, "x-amz-decoded-content-length": "1" }), AUTH, MAX));
      expect(err.code).toBe("NotImplemented");
      expect(err.status).toBe(501);
      expect(err.message).toBe("SigV4a streaming payloads are not supported");
    }
  });

  it("refuses signed aws-chunked bodies on presigned requests (InvalidRequest), but takes unsigned trailers", () => {
    for (const value of ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": value, "x-amz-decoded-content-length": "1" }), PRESIGNED, MAX));
      expect(err.code).toBe("InvalidRequest");
      expect(err.message).toBe("a presigned request cannot carry a signed aws-chunked body");
    }
    const incoming = incomingBody(request({ "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "1" }), PRESIGNED, MAX);
    expect(incoming.options.expectedSize).toBe(1);
  });
});

describe("incomingBody: sizes", () => {
  it("takes the expected size from Content-Length, or from x-amz-decoded-content-length for aws-chunked bodies", () => {
    expect(incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-length": "0" }), AUTH, MAX).options.expectedSize).toBe(0);
    expect(incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD }), AUTH, MAX).options.expectedSize).toBeUndefined();
    for (const mode of ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]) {
      const incoming = incomingBody(request({ "x-amz-content-sha256": mode, "content-length": "999", "x-amz-decoded-content-length": "40" }), AUTH, MAX);
      expect(incoming.options.expectedSize).toBe(40);
    }
  });

  it("refuses an aws-chunked body without x-amz-decoded-content-length (MissingContentLength, 411)", () => {
    for (const mode of ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": mode, "content-length": "100" }), AUTH, MAX));
      expect(err.code).toBe("MissingContentLength");
      expect(err.status).toBe(411);
      expect(err.message).toBe("an aws-chunked body needs x-amz-decoded-content-length");
    }
  });

  it("refuses sizes above the limit (EntityTooLarge) and accepts the limit itself", () => {
    expect(incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-length": String(MAX) }), AUTH, MAX).options.expectedSize).toBe(MAX);
    const plain = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-length": String(MAX + 1) }), AUTH, MAX));
    expect(plain.code).toBe("EntityTooLarge");
    expect(plain.status).toBe(400);
    expect(plain.message).toBe("the object (1001 bytes) is larger than the limit of 1000 bytes for one upload");
    const chunked = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-length": "10", "x-amz-decoded-content-length": "5000000000000" }), AUTH, MAX));
    expect(chunked.code).toBe("EntityTooLarge");
    expect(chunked.message).toBe("the object (5000000000000 bytes) is larger than the limit of 1000 bytes for one upload");
  });

  it("refuses sizes that are not numbers (InvalidArgument)", () => {
    for (const value of ["abc", "-1", "1e3", "1.5", " 12", "0x10", "12345678901234567", ""]) {
      const plain = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-length": value }), AUTH, MAX));
      expect([value, plain.code, plain.message]).toEqual([value, "InvalidArgument", "content-length must be a number of bytes"]);
      const chunked = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": value }), AUTH, MAX));
      expect([value, chunked.code, chunked.message]).toEqual([value, "InvalidArgument", "x-amz-decoded-content-length must be a number of bytes"]);
    }
  });
});

describe("incomingBody: Content-MD5", () => {
  it("hands a valid Content-MD5 to the store as 16 bytes", () => {
    const md5 = createHash("md5").update("abc").digest();
    const incoming = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-md5": md5.toString("base64") }), AUTH, MAX);
    expect(incoming.options.expectedMd5).toEqual(md5);
  });

  it("refuses a malformed Content-MD5 (InvalidDigest)", () => {
    const md5 = createHash("md5").update("abc").digest();
    for (const value of ["", "abc", md5.toString("hex"), md5.toString("base64").replace(/=+$/, ""), md5.subarray(0, 15).toString("base64"), Buffer.concat([md5, md5]).toString("base64"), "!!!!!!!!!!!!!!!!!!!!!!!!"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "content-md5": value }), AUTH, MAX));
      expect([value, err.code, err.status, err.message]).toEqual([value, "InvalidDigest", 400, "Content-MD5 must be the base64 of 16 bytes"]);
    }
  });
});

describe("incomingBody: checksums", () => {
  const digestOf = (algorithm: ChecksumAlgorithm) => fc.uint8Array({ minLength: DIGEST_BYTES[algorithm], maxLength: DIGEST_BYTES[algorithm] }).map((b) => Buffer.from(b));

  it("checks an x-amz-checksum-* header of any algorithm: a match is recorded, a mismatch is BadDigest (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CHECKSUM_ALGORITHMS).chain((a) => fc.tuple(fc.constant(a), digestOf(a), digestOf(a))),
        fc.constantFrom(UNSIGNED_PAYLOAD, "sha256"),
        async ([algorithm, declared, computed], mode) => {
          // (With a hex payload hash, the sha256 digest is the real one: that pairing has its own test.)
          fc.pre(!(mode === "sha256" && algorithm === "sha256"));
          const body = Buffer.from("payload");
          const incoming = incomingBody(
            request({ "x-amz-content-sha256": mode === "sha256" ? sha256(body).toString("hex") : mode, [`x-amz-checksum-${algorithm}`]: declared.toString("base64") }, body),
            AUTH,
            MAX,
          );
          expect(incoming.options.digests).toEqual(mode === "sha256" ? [...new Set(["sha256", algorithm])] : [algorithm]);
          const outcome = await store(incoming, { [algorithm]: computed }).then(
            () => "stored",
            (e: unknown) => e as S3Error,
          );
          if (declared.equals(computed)) {
            expect(outcome).toBe("stored");
            expect(incoming.options.checksums).toEqual({ [algorithm]: declared.toString("base64") });
          } else {
            expect(outcome).toBeInstanceOf(S3Error);
            expect((outcome as S3Error).code).toBe("BadDigest");
            expect((outcome as S3Error).message).toBe(`The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
            expect(incoming.options.checksums).toEqual({});
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("checks a real CRC32 header against the body", async () => {
    const body = Buffer.from("The quick brown fox");
    const good = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-checksum-crc32": crc32Of(body).toString("base64") }, body), AUTH, MAX);
    await store(good);
    expect(good.options.checksums).toEqual({ crc32: crc32Of(body).toString("base64") });
    const bad = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-checksum-crc32": crc32Of(Buffer.from("other")).toString("base64") }, body), AUTH, MAX);
    await expect(store(bad)).rejects.toMatchObject({ code: "BadDigest", message: "The CRC32 you specified did not match the calculated checksum." });
  });

  it("checks x-amz-checksum-sha256 and a hex x-amz-content-sha256 against the same digest", async () => {
    const body = Buffer.from("both hashes");
    const headers = { "x-amz-content-sha256": sha256(body).toString("hex"), "x-amz-checksum-sha256": sha256(body).toString("base64") };
    const good = incomingBody(request(headers, body), AUTH, MAX);
    expect(good.options.digests).toEqual(["sha256"]);
    await store(good);
    expect(good.options.checksums).toEqual({ sha256: sha256(body).toString("base64") });
    const bad = incomingBody(request({ ...headers, "x-amz-checksum-sha256": sha256("x").toString("base64") }, body), AUTH, MAX);
    await expect(store(bad)).rejects.toMatchObject({ code: "BadDigest", message: "The SHA256 you specified did not match the calculated checksum." });
  });

  it("refuses two checksum headers (InvalidRequest)", () => {
    const err = s3ErrorOf(() =>
      incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": createHash("sha1").digest("base64") }), AUTH, MAX),
    );
    expect(err.code).toBe("InvalidRequest");
    expect(err.message).toBe("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  });

  it("refuses a checksum header whose value is not the base64 of a digest of that algorithm (InvalidRequest)", () => {
    const cases: Array<[ChecksumAlgorithm, string]> = [
      ["crc32", "AAAAAAAAAAA="],
      ["crc32", "AAAAAA"],
      ["crc32", ""],
      ["crc32c", "not base64!"],
      ["crc64nvme", "AAAAAA=="],
      ["sha1", EMPTY_SHA256],
      ["sha256", createHash("sha1").digest("base64")],
    ];
    for (const [algorithm, value] of cases) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, [`x-amz-checksum-${algorithm}`]: value }), AUTH, MAX));
      expect([algorithm, value, err.code, err.message]).toEqual([algorithm, value, "InvalidRequest", `Value for x-amz-checksum-${algorithm} header is invalid.`]);
    }
  });

  it("computes and records a checksum that is only requested (x-amz-sdk-checksum-algorithm, x-amz-checksum-algorithm)", async () => {
    const body = Buffer.from("requested");
    for (const header of ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"]) {
      const incoming = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, [header]: "CRC32" }, body), AUTH, MAX);
      expect(incoming.options.digests).toEqual(["crc32"]);
      await store(incoming);
      expect(incoming.options.checksums).toEqual({ crc32: crc32Of(body).toString("base64") });
    }
    const sha1 = incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-sdk-checksum-algorithm": " sha1 " }, body), AUTH, MAX);
    expect(sha1.options.digests).toEqual(["sha1"]);
  });

  it("refuses an unknown requested checksum algorithm (InvalidRequest)", () => {
    const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-sdk-checksum-algorithm": "MD5" }), AUTH, MAX));
    expect(err.code).toBe("InvalidRequest");
    expect(err.message).toBe('unsupported checksum algorithm "md5"');
  });

  it("refuses x-amz-trailer without a trailer mode (InvalidRequest)", () => {
    for (const mode of [UNSIGNED_PAYLOAD, EMPTY_SHA256, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]) {
      const err = s3ErrorOf(() => incomingBody(request({ "x-amz-content-sha256": mode, "x-amz-decoded-content-length": "0", "x-amz-trailer": "x-amz-checksum-crc32" }), AUTH, MAX));
      expect([mode, err.code, err.message]).toEqual([mode, "InvalidRequest", "x-amz-trailer needs a STREAMING-…-TRAILER x-amz-content-sha256"]);
    }
  });

  it("refuses a checksum both in a header and in the trailer, or an unknown trailer (InvalidRequest)", () => {
    const base = { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "0" };
    const both = s3ErrorOf(() => incomingBody(request({ ...base, "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-checksum-crc32": "AAAAAA==" }), AUTH, MAX));
    expect(both.code).toBe("InvalidRequest");
    expect(both.message).toBe("a checksum may come in a header or in the trailer, not both");
    const unknown = s3ErrorOf(() => incomingBody(request({ ...base, "x-amz-trailer": "X-Amz-Checksum-MD5" }), AUTH, MAX));
    expect(unknown.code).toBe("InvalidRequest");
    expect(unknown.message).toBe('unsupported trailer "x-amz-checksum-md5": expected x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}');
  });
});

describe("incomingBody: aws-chunked bodies", () => {
  const trailerHeaders = (payload: Buffer, algorithm = "crc32") => ({
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "content-encoding": "aws-chunked",
    "x-amz-trailer": `x-amz-checksum-${algorithm}`,
    "x-amz-sdk-checksum-algorithm": algorithm.toUpperCase(),
    "x-amz-decoded-content-length": String(payload.length),
  });

  it("strips the framing of an unsigned trailer body and checks its trailer checksum (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 1000 }), fc.boolean(), async (bytes, chunkBytes, corrupt) => {
        const payload = Buffer.from(bytes);
        const crc = crc32Of(payload);
        if (corrupt) crc[0] = crc[0]! ^ 0xff;
        const incoming = incomingBody(request(trailerHeaders(payload), unsignedTrailerBody(payload, ["x-amz-checksum-crc32", crc.toString("base64")], chunkBytes)), AUTH, 1 << 20);
        expect(incoming.options.digests).toEqual(["crc32"]);
        expect(incoming.options.expectedSize).toBe(payload.length);
        const outcome = await store(incoming).then(
          (stored) => stored,
          (e: unknown) => e,
        );
        if (corrupt) {
          expect(outcome).toMatchObject({ code: "BadDigest", message: "The CRC32 you specified did not match the calculated checksum." });
        } else {
          expect(Buffer.isBuffer(outcome) && outcome.equals(payload)).toBe(true);
          expect(incoming.options.checksums).toEqual({ crc32: crc32Of(payload).toString("base64") });
        }
      }),
      { numRuns: 150 },
    );
  });

  it("refuses a trailer body whose announced trailer did not arrive (InvalidRequest)", async () => {
    const payload = Buffer.from("abc");
    const incoming = incomingBody(request(trailerHeaders(payload), unsignedTrailerBody(payload, ["x-amz-checksum-sha256", sha256(payload).toString("base64")])), AUTH, MAX);
    await expect(store(incoming)).rejects.toMatchObject({ code: "InvalidRequest", message: "the trailer x-amz-checksum-crc32 announced in x-amz-trailer did not arrive" });
  });

  it("decodes a signed aws-chunked body, verifying each chunk against the seed signature", async () => {
    const payload = Buffer.from("x".repeat(5000));
    const raw = await signedChunkedPut("/bkt/key", HOST, payload, {}, { chunkBytes: 1024, date: NOW });
    const incoming = incomingBody(fromRaw(raw), await authOf(raw), MAX * 10);
    expect(incoming.options.expectedSize).toBe(5000);
    expect(incoming.options.digests).toEqual([]);
    expect((await store(incoming)).equals(payload)).toBe(true);
  });

  it("computes and records a checksum that is only requested on a signed aws-chunked upload without trailer", async () => {
    const payload = Buffer.from("z".repeat(2000));
    const raw = await signedChunkedPut("/bkt/key", HOST, payload, { "x-amz-sdk-checksum-algorithm": "CRC32" }, { chunkBytes: 1024, date: NOW });
    const incoming = incomingBody(fromRaw(raw), await authOf(raw), MAX * 10);
    expect(incoming.options.digests).toEqual(["crc32"]);
    expect((await store(incoming)).equals(payload)).toBe(true);
    expect(incoming.options.checksums).toEqual({ crc32: crc32Of(payload).toString("base64") });
  });

  it("fails the body of a signed aws-chunked upload with a forged chunk (ChunkedEncodingError → SignatureDoesNotMatch)", async () => {
    const payload = Buffer.from("y".repeat(3000));
    const raw = await signedChunkedPut("/bkt/key", HOST, payload, {}, { chunkBytes: 1024, date: NOW, chunkSignature: (i, s) => (i === 1 ? "f".repeat(64) : s) });
    const incoming = incomingBody(fromRaw(raw), await authOf(raw), MAX * 10);
    const err = await readAll(incoming.body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChunkedEncodingError);
    expect(toS3Error(err)).toMatchObject({ code: "SignatureDoesNotMatch", status: 403 });
  });

  it("checks the trailer signature and the trailer checksum of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", async () => {
    const payload = Buffer.from("signed with a trailer");
    const crc = crc32Of(payload).toString("base64");
    const headers = { "x-amz-sdk-checksum-algorithm": "CRC32" };
    const raw = await signedChunkedPut("/bkt/key", HOST, payload, headers, { chunkBytes: 7, date: NOW, trailer: ["x-amz-checksum-crc32", crc] });
    const good = incomingBody(fromRaw(raw), await authOf(raw), MAX);
    expect((await store(good)).equals(payload)).toBe(true);
    expect(good.options.checksums).toEqual({ crc32: crc });

    const forged = await signedChunkedPut("/bkt/key", HOST, payload, headers, { chunkBytes: 7, date: NOW, trailer: ["x-amz-checksum-crc32", crc], trailerSignature: () => "0".repeat(64) });
    await expect(store(incomingBody(fromRaw(forged), await authOf(forged), MAX))).rejects.toMatchObject({
      code: "SignatureDoesNotMatch",
      message: "the trailer signature (x-amz-trailer-signature) is missing or does not match",
    });

    const wrongCrc = crc32Of(Buffer.from("other")).toString("base64");
    const badSum = await signedChunkedPut("/bkt/key", HOST, payload, headers, { chunkBytes: 7, date: NOW, trailer: ["x-amz-checksum-crc32", wrongCrc] });
    await expect(store(incomingBody(fromRaw(badSum), await authOf(badSum), MAX))).rejects.toMatchObject({ code: "BadDigest" });
  });

  it("passes an error of the request stream (client gone) on to the body", async () => {
    const stream = new Readable({
      read() {
        this.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      },
    });
    const incoming = incomingBody({ header: request(trailerHeaders(Buffer.alloc(10))).header, stream }, AUTH, MAX);
    const err = await readAll(incoming.body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "ECONNRESET" });
    expect(toS3Error(err)).toMatchObject({ code: "IncompleteBody", status: 400 });
  });
});

describe("incomingBody: Content-Encoding", () => {
  const encodingOf = (value: string | undefined) =>
    incomingBody(request({ "x-amz-content-sha256": UNSIGNED_PAYLOAD, ...(value === undefined ? {} : { "content-encoding": value }) }), AUTH, MAX).contentEncoding;

  it("records the request's Content-Encoding without the aws-chunked token", () => {
    expect(encodingOf("aws-chunked, gzip")).toBe("gzip");
    expect(encodingOf("aws-chunked,gzip")).toBe("gzip");
    expect(encodingOf("gzip,aws-chunked")).toBe("gzip");
    expect(encodingOf("AWS-Chunked, gzip")).toBe("gzip");
    expect(encodingOf("gzip, aws-chunked, br")).toBe("gzip, br");
    expect(encodingOf("gzip")).toBe("gzip");
    expect(encodingOf("aws-chunked")).toBeUndefined();
    expect(encodingOf(" , aws-chunked , ")).toBeUndefined();
    expect(encodingOf("")).toBeUndefined();
    expect(encodingOf(undefined)).toBeUndefined();
  });

  it("strips aws-chunked from the encoding of a real aws-chunked upload", () => {
    const headers = { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "0", "content-encoding": "aws-chunked, gzip" };
    expect(incomingBody(request(headers), AUTH, MAX).contentEncoding).toBe("gzip");
  });
});
