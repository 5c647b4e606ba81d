import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { expectStore, RawConnection, rawSend, requestHead, bodyOf, type RawResponse } from "../../s3/inspect.js";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer } from "../../s3/harness.js";
import { presignTarget, send, signedChunkedPut, signRequest, unsignedTrailerBody, type RawReply, type RawRequest, type SignOptions } from "../../s3/signer.js";

/**
 * Hand-built hostile and broken requests against the S3 endpoint. Each asserts the exact status
 * and S3 error code, and that nothing partial was stored: the target key is absent (or still holds
 * its previous bytes), every temp folder is empty, and the bucket folders hold exactly the objects
 * the tests stored on purpose.
 */

let s3: S3TestServer;
/** What bucket "bkt" must hold: key → content. */
const objects = new Map<string, Buffer>();
/** Open multipart uploads the store must hold: upload id → files. */
const uploads: Record<string, string[]> = {};
const EXISTING = Buffer.from("the previous content of 'existing', byte for byte\n");

beforeAll(async () => {
  s3 = await startS3({ buckets: ["bkt"] });
  await putOk("existing", EXISTING);
});
afterAll(async () => {
  await s3?.close();
});

// --- helpers -----------------------------------------------------------------------------------

const sha256Hex = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const md5Base64 = (data: Buffer | string) => createHash("md5").update(data).digest("base64");
const md5Hex = (data: Buffer | string) => createHash("md5").update(data).digest("hex");
const crc32Base64 = (data: Buffer) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data));
  return bytes.toString("base64");
};
/** Another valid-looking signature: the first hex digit changed. */
const tamper = (signature: string) => `${signature[0] === "0" ? "1" : "0"}${signature.slice(1)}`;

/** A SigV4-signed request (Content-Length added and signed when there is a body). */
function signed(method: string, target: string, headers: Record<string, string> = {}, body?: Buffer, options: SignOptions = {}): Promise<RawRequest> {
  const all = body ? { "content-length": String(body.length), ...headers } : headers;
  return signRequest({ method, target, headers: all, ...(body ? { body } : {}) }, s3.host, options);
}

async function putOk(key: string, body: Buffer, headers: Record<string, string> = {}): Promise<void> {
  const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, headers, body));
  expect(reply.status, reply.text).toBe(200);
  objects.set(key, body);
}

function get(target: string, headers: Record<string, string> = {}, server = s3): Promise<RawReply> {
  return signRequest({ method: "GET", target, headers }, server.host).then((request) => send(server.port, request));
}

function expectError(reply: RawReply, status: number, code: string): void {
  expect({ status: reply.status, code: reply.code }, reply.text).toEqual({ status, code });
  expect(reply.headers["content-type"]).toBe("application/xml");
  expect(reply.text).toMatch(/^<\?xml[^>]*>\s*<Error[\s>]/);
}

/** 4xx with an S3 XML error body. */
function expectClientError(reply: RawReply): void {
  expect(reply.status, reply.text).toBeGreaterThanOrEqual(400);
  expect(reply.status, reply.text).toBeLessThan(500);
  expect(reply.code, reply.text).toMatch(/^[A-Za-z]+$/);
}

/** The keys are absent, every object the tests stored is intact byte for byte, and the store holds nothing else. */
async function expectNothingStored(...absent: string[]): Promise<void> {
  for (const key of absent) {
    if (objects.has(key)) continue;
    const reply = await get(`/bkt/${key}`);
    expect({ status: reply.status, code: reply.code }, `GET ${key}`).toEqual({ status: 404, code: "NoSuchKey" });
  }
  for (const [key, content] of objects) {
    const reply = await get(`/bkt/${encodeKey(key)}`);
    expect(reply.status, `GET ${key}`).toBe(200);
    expect(reply.body.equals(content), `content of ${key}`).toBe(true);
  }
  await expectStore(s3.root, { buckets: { bkt: objects.keys() }, uploads });
}

/** After a connection was cut the server cleans up asynchronously: wait for the store to settle. */
async function eventuallyNothingStored(...absent: string[]): Promise<void> {
  await vi.waitFor(() => expectStore(s3.root, { buckets: { bkt: objects.keys() }, uploads }), { timeout: 5_000, interval: 50 });
  await expectNothingStored(...absent);
}

const encodeKey = (key: string) => key.split("/").map(encodeURIComponent).join("/");

/** The request as an unsigned aws-chunked body with a trailing checksum, as the AWS SDKs send it. */
function unsignedTrailerPut(key: string, payload: Buffer, trailer: [string, string], options: { chunkBytes?: number; decodedLength?: number; headers?: Record<string, string> } = {}): Promise<RawRequest> {
  const body = unsignedTrailerBody(payload, trailer, options.chunkBytes);
  return signed(
    "PUT",
    `/bkt/${key}`,
    {
      "content-encoding": "aws-chunked",
      "x-amz-trailer": trailer[0],
      "x-amz-decoded-content-length": String(options.decodedLength ?? payload.length),
      "x-amz-sdk-checksum-algorithm": trailer[0].slice("x-amz-checksum-".length).toUpperCase(),
      ...options.headers,
    },
    body,
    { payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER" },
  );
}

function xmlField(text: string, name: string): string {
  const value = new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
  if (value === undefined) throw new Error(`no <${name}> in ${text.slice(0, 300)}`);
  return value.replace(/&quot;/g, '"');
}

// --- authentication ------------------------------------------------------------------------------

describe("authentication", () => {
  it("a signature made with the wrong secret: 403 SignatureDoesNotMatch, nothing stored", async () => {
    for (const key of ["auth-wrong-secret", "existing"]) {
      const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, {}, Buffer.from("intruder"), { secretKey: "not-the-secret-key" }));
      expectError(reply, 403, "SignatureDoesNotMatch");
    }
    const read = await send(s3.port, await signed("GET", "/bkt/existing", {}, undefined, { secretKey: "not-the-secret-key" }));
    expectError(read, 403, "SignatureDoesNotMatch");
    expect(read.text).not.toContain(EXISTING.toString());
    await expectNothingStored("auth-wrong-secret");
  });

  it("HEAD with a bad signature: 403 with an empty body", async () => {
    const reply = await send(s3.port, await signed("HEAD", "/bkt/existing", {}, undefined, { secretKey: "not-the-secret-key" }));
    expect(reply.status).toBe(403);
    expect(reply.body.length).toBe(0);
    expect(reply.headers.etag).toBeUndefined();
  });

  it("a missing or malformed x-amz-date: 403 AccessDenied", async () => {
    const body = Buffer.from("undated");
    const request = await signed("PUT", "/bkt/auth-undated", {}, body);
    const { ["x-amz-date"]: _date, ...undated } = request.headers;
    expectError(await rawSend(s3.port, { ...request, headers: undated }), 403, "AccessDenied");
    expectError(await rawSend(s3.port, { ...request, headers: { ...request.headers, "x-amz-date": "2026-11-22T10:15:00Z" } }), 403, "AccessDenied");
    await expectNothingStored("auth-undated");
  });

  it("header and query authentication at once: 400 InvalidArgument", async () => {
    const target = await presignTarget("GET", "/bkt/existing", s3.host);
    const request = await signed("GET", target);
    const reply = await rawSend(s3.port, request);
    expectError(reply, 400, "InvalidArgument");
    expect(reply.text).not.toContain(EXISTING.toString());
  });

  it("an unknown access key: 403 InvalidAccessKeyId", async () => {
    for (const key of ["auth-unknown-key", "existing"]) {
      const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, {}, Buffer.from("intruder"), { accessKey: "AKIANOSUCHKEY0000000" }));
      expectError(reply, 403, "InvalidAccessKeyId");
    }
    await expectNothingStored("auth-unknown-key");
  });

  it("an anonymous request: 403 AccessDenied (no data read, none written)", async () => {
    const put = await rawSend(s3.port, { method: "PUT", target: "/bkt/auth-anonymous", headers: { host: s3.host, "content-length": "8" }, body: Buffer.from("intruder") });
    expectError(put, 403, "AccessDenied");
    const read = await rawSend(s3.port, { method: "GET", target: "/bkt/existing", headers: { host: s3.host } });
    expectError(read, 403, "AccessDenied");
    expect(read.text).not.toContain(EXISTING.toString());
    const list = await rawSend(s3.port, { method: "GET", target: "/bkt?list-type=2", headers: { host: s3.host } });
    expectError(list, 403, "AccessDenied");
    await expectNothingStored("auth-anonymous");
  });

  it("Signature Version 2 in the Authorization header (correctly signed): 403 AccessDenied", async () => {
    const date = new Date().toUTCString();
    const body = Buffer.from("sigv2 body");
    const stringToSign = `PUT\n\napplication/octet-stream\n${date}\n/bkt/auth-sigv2`;
    const signature = createHmac("sha1", SECRET_KEY).update(stringToSign).digest("base64");
    const reply = await rawSend(s3.port, {
      method: "PUT",
      target: "/bkt/auth-sigv2",
      headers: { host: s3.host, date, "content-type": "application/octet-stream", "content-length": String(body.length), authorization: `AWS ${ACCESS_KEY}:${signature}` },
      body,
    });
    expectError(reply, 403, "AccessDenied");
    await expectNothingStored("auth-sigv2");
  });

  it("a Signature Version 2 presigned URL (AWSAccessKeyId, Expires, Signature): 403", async () => {
    const expires = String(Math.floor(Date.now() / 1000) + 600);
    const v2 = (method: string, path: string) => {
      const signature = createHmac("sha1", SECRET_KEY).update(`${method}\n\n\n${expires}\n${path}`).digest("base64");
      return `${path}?AWSAccessKeyId=${ACCESS_KEY}&Expires=${expires}&Signature=${encodeURIComponent(signature)}`;
    };
    const read = await rawSend(s3.port, { method: "GET", target: v2("GET", "/bkt/existing"), headers: { host: s3.host } });
    expectError(read, 403, "AccessDenied");
    expect(read.text).not.toContain(EXISTING.toString());
    const body = Buffer.from("sigv2 presigned body");
    const write = await rawSend(s3.port, { method: "PUT", target: v2("PUT", "/bkt/auth-sigv2-presigned"), headers: { host: s3.host, "content-length": String(body.length) }, body });
    expectError(write, 403, "AccessDenied");
    await expectNothingStored("auth-sigv2-presigned");
  });
});

// --- aws-chunked bodies --------------------------------------------------------------------------

describe("aws-chunked bodies", () => {
  // 200,000 bytes in 64 KiB chunks: data chunks 0-3, the final empty chunk is index 4.
  const payload = randomBytes(200_000);
  const FINAL_CHUNK = 4;

  it("a bad signature on a middle chunk: 403 SignatureDoesNotMatch, nothing stored", async () => {
    for (const key of ["chunk-bad-middle", "existing"]) {
      const request = await signedChunkedPut(`/bkt/${key}`, s3.host, payload, { "content-md5": md5Base64(payload) }, { chunkSignature: (i, s) => (i === 1 ? tamper(s) : s) });
      expectError(await rawSend(s3.port, request), 403, "SignatureDoesNotMatch");
    }
    await eventuallyNothingStored("chunk-bad-middle");
  });

  it("a bad signature on the final (empty) chunk: 403 SignatureDoesNotMatch, nothing stored", async () => {
    for (const key of ["chunk-bad-final", "existing"]) {
      const request = await signedChunkedPut(`/bkt/${key}`, s3.host, payload, {}, { contentEncoding: true, chunkSignature: (i, s) => (i === FINAL_CHUNK ? tamper(s) : s) });
      expectError(await rawSend(s3.port, request), 403, "SignatureDoesNotMatch");
    }
    await eventuallyNothingStored("chunk-bad-final");
  });

  it("a bad trailer signature: 403 SignatureDoesNotMatch; the same upload correctly signed is stored", async () => {
    const trailer: [string, string] = ["x-amz-checksum-crc32", crc32Base64(payload)];
    const bad = await signedChunkedPut("/bkt/chunk-bad-trailer-sig", s3.host, payload, {}, { trailer, trailerSignature: tamper });
    expectError(await rawSend(s3.port, bad), 403, "SignatureDoesNotMatch");
    await expectNothingStored("chunk-bad-trailer-sig");

    const good = await signedChunkedPut("/bkt/chunk-good-trailer-sig", s3.host, payload, {}, { trailer });
    const reply = await rawSend(s3.port, good);
    expect(reply.status, reply.text).toBe(200);
    objects.set("chunk-good-trailer-sig", payload);
    await expectNothingStored();
  });

  it("a signed trailer with the wrong checksum: 400 BadDigest", async () => {
    const request = await signedChunkedPut("/bkt/chunk-bad-trailer-crc", s3.host, payload, {}, { trailer: ["x-amz-checksum-crc32", crc32Base64(Buffer.from("something else"))] });
    expectError(await rawSend(s3.port, request), 400, "BadDigest");
    await expectNothingStored("chunk-bad-trailer-crc");
  });

  it("STREAMING-UNSIGNED-PAYLOAD-TRAILER with a wrong x-amz-checksum-crc32: 400 BadDigest, nothing stored", async () => {
    const wrong: [string, string] = ["x-amz-checksum-crc32", crc32Base64(Buffer.from("not the payload"))];
    expectError(await rawSend(s3.port, await unsignedTrailerPut("trailer-wrong-crc", payload, wrong)), 400, "BadDigest");
    expectError(await rawSend(s3.port, await unsignedTrailerPut("existing", payload, wrong, { chunkBytes: 65_536 })), 400, "BadDigest");
    await expectNothingStored("trailer-wrong-crc");
  });

  it("STREAMING-UNSIGNED-PAYLOAD-TRAILER with the right checksum: 200, the payload stored without framing, checksum returned", async () => {
    const checksum = crc32Base64(payload);
    for (const [key, chunkBytes] of [
      ["trailer-ok-one-chunk", undefined],
      ["trailer-ok-chunks", 65_536],
    ] as const) {
      const reply = await rawSend(s3.port, await unsignedTrailerPut(key, payload, ["x-amz-checksum-crc32", checksum], { chunkBytes }));
      expect(reply.status, reply.text).toBe(200);
      expect(reply.headers.etag).toBe(`"${md5Hex(payload)}"`);
      objects.set(key, payload);

      const read = await get(`/bkt/${key}`, { "x-amz-checksum-mode": "ENABLED" });
      expect(read.status).toBe(200);
      expect(read.body.length).toBe(payload.length);
      expect(read.body.subarray(0, 16).toString("latin1")).not.toMatch(/^[0-9a-f]+\r\n/);
      expect(read.body.equals(payload)).toBe(true);
      expect(read.headers["x-amz-checksum-crc32"]).toBe(checksum);
      expect(read.headers["content-encoding"]).toBeUndefined();
    }
    await expectNothingStored();
  });
});

// --- integrity headers ---------------------------------------------------------------------------

describe("integrity headers", () => {
  const body = Buffer.from("a body whose digests the client declares\n");

  it("a wrong Content-MD5: 400 BadDigest", async () => {
    for (const key of ["digest-wrong-md5", "existing"]) {
      expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, { "content-md5": md5Base64("another body") }, body)), 400, "BadDigest");
    }
    await expectNothingStored("digest-wrong-md5");
  });

  it("a malformed Content-MD5: 400 InvalidDigest", async () => {
    for (const [key, value] of [
      ["digest-bad-md5", "not base64!"],
      ["digest-bad-md5", Buffer.from("seven b").toString("base64")],
      ["existing", md5Hex(body)],
    ]) {
      expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, { "content-md5": value! }, body)), 400, "InvalidDigest");
    }
    await expectNothingStored("digest-bad-md5");
  });

  it("a hex x-amz-content-sha256 that does not match the body: 400 XAmzContentSHA256Mismatch", async () => {
    for (const key of ["digest-wrong-sha", "existing"]) {
      const request = await signed("PUT", `/bkt/${key}`, {}, body, { payloadHash: sha256Hex("a different body") });
      expectError(await rawSend(s3.port, request), 400, "XAmzContentSHA256Mismatch");
    }
    await expectNothingStored("digest-wrong-sha");
  });

  it("a wrong x-amz-checksum-sha256 header: 400 BadDigest", async () => {
    const wrong = createHash("sha256").update("a different body").digest("base64");
    for (const key of ["digest-wrong-checksum", "existing"]) {
      expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, { "x-amz-checksum-sha256": wrong }, body)), 400, "BadDigest");
    }
    await expectNothingStored("digest-wrong-checksum");
  });
});

// --- presigned URLs ------------------------------------------------------------------------------

describe("presigned URLs", () => {
  it("expired (signed 20 minutes ago for 60 s): 403 AccessDenied, Request has expired", async () => {
    const date = new Date(Date.now() - 20 * 60_000);
    const read = await rawSend(s3.port, { method: "GET", target: await presignTarget("GET", "/bkt/existing", s3.host, { date, expiresIn: 60 }), headers: { host: s3.host } });
    expectError(read, 403, "AccessDenied");
    expect(read.text).toContain("<Message>Request has expired</Message>");
    expect(read.text).not.toContain(EXISTING.toString());

    const body = Buffer.from("too late");
    for (const key of ["presigned-expired", "existing"]) {
      const target = await presignTarget("PUT", `/bkt/${key}`, s3.host, { date, expiresIn: 60 });
      const write = await rawSend(s3.port, { method: "PUT", target, headers: { host: s3.host, "content-length": String(body.length) }, body });
      expectError(write, 403, "AccessDenied");
      expect(write.text).toContain("Request has expired");
    }
    await expectNothingStored("presigned-expired");
  });

  it("a tampered path: 403 SignatureDoesNotMatch (the untampered URL works)", async () => {
    const body = Buffer.from("presigned upload");
    const target = await presignTarget("PUT", "/bkt/presigned-signed-for", s3.host);
    const query = target.slice(target.indexOf("?"));
    for (const path of ["/bkt/presigned-tampered", "/bkt/existing", "/bkt/presigned-signed-for/../presigned-tampered"]) {
      const reply = await rawSend(s3.port, { method: "PUT", target: `${path}${query}`, headers: { host: s3.host, "content-length": String(body.length) }, body });
      expectError(reply, 403, "SignatureDoesNotMatch");
    }
    const read = await rawSend(s3.port, { method: "GET", target: `/bkt/existing${(await presignTarget("GET", "/bkt/other", s3.host)).slice("/bkt/other".length)}`, headers: { host: s3.host } });
    expectError(read, 403, "SignatureDoesNotMatch");
    await expectNothingStored("presigned-tampered", "presigned-signed-for");

    const ok = await rawSend(s3.port, { method: "PUT", target, headers: { host: s3.host, "content-length": String(body.length) }, body });
    expect(ok.status, ok.text).toBe(200);
    objects.set("presigned-signed-for", body);
    await expectNothingStored("presigned-tampered");
  });

  it("X-Amz-Expires above 604800 (a week): 400 AuthorizationQueryParametersError", async () => {
    const target = (await presignTarget("GET", "/bkt/existing", s3.host, { expiresIn: 600 })).replace("X-Amz-Expires=600", "X-Amz-Expires=604801");
    expect(target).toContain("X-Amz-Expires=604801");
    const reply = await rawSend(s3.port, { method: "GET", target, headers: { host: s3.host } });
    expectError(reply, 400, "AuthorizationQueryParametersError");
    expect(reply.text).not.toContain(EXISTING.toString());
  });
});

// --- clock skew ----------------------------------------------------------------------------------

describe("clock skew", () => {
  const body = Buffer.from("signed at another time");

  it("signed 16 minutes in the past or the future: 403 RequestTimeTooSkewed with ServerTime", async () => {
    for (const [key, offset] of [
      ["skew-past", -16],
      ["skew-future", 16],
      ["existing", -16],
    ] as const) {
      const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, {}, body, { date: new Date(Date.now() + offset * 60_000) }));
      expectError(reply, 403, "RequestTimeTooSkewed");
      expect(reply.text).toMatch(/<ServerTime>[^<]+<\/ServerTime>/);
      expect(reply.text).toMatch(/<RequestTime>[^<]+<\/RequestTime>/);
    }
    await expectNothingStored("skew-past", "skew-future");
  });

  it("signed 14 minutes in the past or the future: accepted", async () => {
    for (const [key, offset] of [
      ["skew-14-past", -14],
      ["skew-14-future", 14],
    ] as const) {
      const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, {}, body, { date: new Date(Date.now() + offset * 60_000) }));
      expect(reply.status, reply.text).toBe(200);
      objects.set(key, body);
    }
    const read = await send(s3.port, await signed("GET", "/bkt/existing", {}, undefined, { date: new Date(Date.now() - 14 * 60_000) }));
    expect(read.status).toBe(200);
    expect(read.body.equals(EXISTING)).toBe(true);
    await expectNothingStored();
  });
});

// --- keys that could leave the bucket ------------------------------------------------------------

describe("keys that could leave the bucket", () => {
  const LONG_KEY = `${Array.from({ length: 5 }, () => "a".repeat(200)).join("/")}/${"b".repeat(20)}`; // 1025 bytes, no segment over 255
  const TARGETS = [
    "/bkt/../etc/passwd",
    "/bkt/a/../../x",
    "/bkt/%2e%2e/x",
    "/bkt/%2E%2E/%2E%2E/x",
    "/bkt/..%2F..%2Fx",
    "/bkt/a/./b",
    "/bkt/a//b",
    "/bkt//x",
    "/bkt/a%00b",
    "/bkt/%00",
    `/bkt/${LONG_KEY}`,
    "/.app-snapshots/tmp/x",
    "/.app-snapshots/meta/bkt/x",
    "/.app-snapshots/uploads/x",
    "/%2e%2e/x",
    "/../x",
    "/bkt%2F..%2F.app-snapshots/x",
  ];
  const OUTSIDE = ["x", "etc", "passwd"];

  it("PUT to a traversing, empty-segment, NUL or too-long key: 4xx with an S3 error, nothing written anywhere", async () => {
    expect(Buffer.byteLength(LONG_KEY)).toBe(1025);
    const parent = dirname(s3.work);
    const before = OUTSIDE.map((name) => existsSync(join(parent, name)));
    const body = Buffer.from("escaped!");
    for (const target of TARGETS) {
      const reply = await rawSend(s3.port, await signed("PUT", target, {}, body));
      expectClientError(reply);
      expect(["InvalidArgument", "InvalidBucketName", "InvalidURI", "KeyTooLongError", "AccessDenied", "NoSuchBucket", "InvalidRequest"], `${target}: ${reply.text}`).toContain(reply.code);
    }
    // Multipart: refused at CreateMultipartUpload already.
    for (const target of ["/bkt/../etc/passwd", "/bkt/a//b", "/bkt/%2e%2e/x"]) {
      const reply = await rawSend(s3.port, await signed("POST", `${target}?uploads`));
      expectClientError(reply);
    }
    expect(readdirSync(s3.work).sort()).toEqual(["root"]);
    expect(readdirSync(s3.root).sort()).toEqual([".app-snapshots", "bkt"]);
    expect(OUTSIDE.map((name) => existsSync(join(parent, name)))).toEqual(before);
    await expectNothingStored();
  });

  it("a key through an existing object, or onto an existing folder: 4xx, both left intact", async () => {
    await putOk("conflict/inner", Buffer.from("inside a folder"));
    for (const target of ["/bkt/existing/child", "/bkt/conflict", "/bkt/existing/a/b"]) {
      const reply = await rawSend(s3.port, await signed("PUT", target, {}, Buffer.from("conflicting")));
      expectClientError(reply);
    }
    await expectNothingStored("conflict");
  });

  it("the 1024-byte key is the longest accepted", async () => {
    const key = LONG_KEY.slice(0, -1);
    expect(Buffer.byteLength(key)).toBe(1024);
    await putOk(key, Buffer.from("longest key"));
    await expectNothingStored();
  });

  it("GET, HEAD and DELETE through traversing keys reach nothing outside the bucket", async () => {
    for (const target of ["/bkt/../../etc/passwd", "/bkt/%2e%2e/bkt/existing", "/bkt/a/../existing", "/bkt/..%2F.app-snapshots%2Fmeta", "/.app-snapshots/meta", "/.app-snapshots/tmp/x"]) {
      const read = await send(s3.port, await signed("GET", target));
      expectClientError(read);
      expect(read.text, target).not.toContain(EXISTING.toString());
      expect(read.text, target).not.toContain("ListBucketResult");
      const head = await send(s3.port, await signed("HEAD", target));
      expect(head.status, `HEAD ${target}`).toBeGreaterThanOrEqual(400);
      expect(head.status, `HEAD ${target}`).toBeLessThan(500);
      expect(head.body.length).toBe(0);
    }
    for (const target of ["/bkt/a/../existing", "/bkt/%2e%2e/bkt/existing", "/bkt/./existing"]) {
      // Such a key cannot name a stored object, so deleting it deletes nothing: 204, as S3 answers for any
      // missing key (aws s3 rm of a "folder/" marker must not fail). What matters is that "existing" stays.
      const reply = await send(s3.port, await signed("DELETE", target));
      expect(reply.status, `DELETE ${target}`).toBe(204);
    }
    await expectNothingStored();
  });
});

// --- truncated and stalled bodies ----------------------------------------------------------------

describe("truncated and stalled bodies", () => {
  /** Sends the head and the first `bytes` of the body, then half-closes; returns the connection once the server closed it. */
  async function sendCut(request: RawRequest, bytes: number): Promise<RawConnection> {
    const connection = await RawConnection.connect(s3.port);
    await connection.write(requestHead(request));
    await connection.write(bodyOf(request).subarray(0, bytes));
    await new Promise((resolve) => setTimeout(resolve, 50));
    connection.end();
    expect(await connection.waitClosed(10_000)).toBe(true);
    return connection;
  }

  it("Content-Length 1000 with only 500 bytes sent, then the socket closed: nothing stored", async () => {
    const body = randomBytes(1000);
    await sendCut(await signed("PUT", "/bkt/cut-plain", {}, body), 500);
    await sendCut(await signed("PUT", "/bkt/existing", {}, body, { payloadHash: "UNSIGNED-PAYLOAD" }), 500);
    await eventuallyNothingStored("cut-plain");
  });

  it("an aws-chunked body cut in the middle of a chunk: nothing stored", async () => {
    const payload = randomBytes(200_000);
    await sendCut(await signedChunkedPut("/bkt/cut-chunked", s3.host, payload, {}), 100_000);
    await sendCut(await unsignedTrailerPut("existing", payload, ["x-amz-checksum-crc32", crc32Base64(payload)], { chunkBytes: 65_536 }), 100_000);
    await eventuallyNothingStored("cut-chunked");
  });

  it("an UploadPart cut short: no part stored, the upload intact", async () => {
    const key = "cut/multipart";
    const uploadId = await createUpload(key);
    const body = randomBytes(1000);
    await sendCut(await signed("PUT", `/bkt/${key}?partNumber=1&uploadId=${uploadId}`, {}, body), 500);
    await sendCut(await signedChunkedPut(`/bkt/${key}?partNumber=2&uploadId=${uploadId}`, s3.host, randomBytes(100_000), {}), 70_000);
    await eventuallyNothingStored(key);
    const aborted = await send(s3.port, await signed("DELETE", `/bkt/${key}?uploadId=${uploadId}`));
    expect(aborted.status).toBe(204);
    delete uploads[uploadId];
    await expectNothingStored(key);
  });

  it("an aws-chunked body shorter than x-amz-decoded-content-length: 400 IncompleteBody", async () => {
    const payload = randomBytes(1000);
    const trailer: [string, string] = ["x-amz-checksum-crc32", crc32Base64(payload)];
    for (const key of ["short-decoded", "existing"]) {
      expectError(await rawSend(s3.port, await unsignedTrailerPut(key, payload, trailer, { decodedLength: 2000 })), 400, "IncompleteBody");
    }
    // Longer than declared is refused as well.
    const longer = await rawSend(s3.port, await unsignedTrailerPut("long-decoded", payload, trailer, { decodedLength: 500 }));
    expect(longer.status, longer.text).toBe(400);
    await expectNothingStored("short-decoded", "long-decoded");
  });

  it("a stalled upload is cut by the idle timeout, and nothing is stored", async () => {
    const slow = await startS3({ buckets: ["bkt"], idleTimeoutMs: 1000 });
    try {
      const previous = Buffer.from("kept while an overwrite stalls");
      const seed = await send(slow.port, await signRequest({ method: "PUT", target: "/bkt/kept", headers: { "content-length": String(previous.length) }, body: previous }, slow.host));
      expect(seed.status).toBe(200);

      const created = await send(slow.port, await signRequest({ method: "POST", target: "/bkt/stalled-mp?uploads", headers: {} }, slow.host));
      expect(created.status).toBe(200);
      const uploadId = xmlField(created.text, "UploadId");

      const payload = randomBytes(300_000);
      const plain = await signRequest({ method: "PUT", target: "/bkt/stalled", headers: { "content-length": String(payload.length) }, body: payload }, slow.host);
      const chunked = await signedChunkedPut("/bkt/kept", slow.host, payload, {});
      const part = await signRequest({ method: "PUT", target: `/bkt/stalled-mp?partNumber=1&uploadId=${uploadId}`, headers: { "content-length": String(payload.length) }, body: payload }, slow.host, { payloadHash: "UNSIGNED-PAYLOAD" });
      const connections: RawConnection[] = [];
      for (const request of [plain, chunked, part]) {
        const connection = await RawConnection.connect(slow.port);
        await connection.write(requestHead(request));
        await connection.write(bodyOf(request).subarray(0, 70_000));
        connections.push(connection);
      }
      const started = Date.now();
      const closed = await Promise.all(connections.map((c) => c.waitClosed(8_000)));
      expect(closed, "the server closes stalled connections").toEqual([true, true, true]);
      expect(Date.now() - started).toBeLessThan(8_000);

      await vi.waitFor(() => expectStore(slow.root, { buckets: { bkt: ["kept"] }, uploads: { [uploadId]: ["upload.json"] } }), { timeout: 5_000, interval: 50 });
      const missing = await get("/bkt/stalled", {}, slow);
      expect({ status: missing.status, code: missing.code }).toEqual({ status: 404, code: "NoSuchKey" });
      const kept = await get("/bkt/kept", {}, slow);
      expect(kept.body.equals(previous)).toBe(true);
    } finally {
      await slow.close();
    }
  });
});

// --- oversized requests --------------------------------------------------------------------------

describe("oversized requests", () => {
  it("a 100 KB header: 431 from Node, and the server keeps serving", async () => {
    const request = await signed("GET", "/bkt/existing", { "x-big": "a".repeat(100 * 1024) });
    const reply = await rawSend(s3.port, request);
    expect(reply.status).toBe(431);
    const next = await get("/bkt/existing");
    expect(next.status).toBe(200);
    expect(next.body.equals(EXISTING)).toBe(true);
    await expectNothingStored();
  });

  it("a request target over 16 KiB: 400 InvalidURI", async () => {
    const body = Buffer.from("long target");
    for (const [method, target] of [
      ["GET", `/bkt/existing?x=${"a".repeat(17 * 1024)}`],
      ["PUT", `/bkt/${"k".repeat(17 * 1024)}`],
    ] as const) {
      const reply = await rawSend(s3.port, await signed(method, target, {}, method === "PUT" ? body : undefined));
      expectError(reply, 400, "InvalidURI");
    }
    const next = await get("/bkt/existing");
    expect(next.status).toBe(200);
    await expectNothingStored();
  });
});

// --- XML documents -------------------------------------------------------------------------------

const BILLION_LAUGHS_DTD = `<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>`;

async function createUpload(key: string, headers: Record<string, string> = {}): Promise<string> {
  const reply = await send(s3.port, await signed("POST", `/bkt/${key}?uploads`, headers));
  expect(reply.status, reply.text).toBe(200);
  const uploadId = xmlField(reply.text, "UploadId");
  uploads[uploadId] = ["upload.json"];
  return uploadId;
}

async function uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
  const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${key}?partNumber=${partNumber}&uploadId=${uploadId}`, {}, body));
  expect(reply.status, reply.text).toBe(200);
  const file = `part/${String(partNumber).padStart(5, "0")}`;
  if (!uploads[uploadId]!.includes(file)) uploads[uploadId]!.push(file);
  return reply.headers.etag as string;
}

function completeXml(parts: Array<[number, string]>): string {
  return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.map(([n, etag]) => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
}

function complete(key: string, uploadId: string, xml: string | Buffer): Promise<RawResponse> {
  return signed("POST", `/bkt/${key}?uploadId=${uploadId}`, {}, Buffer.from(xml)).then((request) => rawSend(s3.port, request));
}

function deleteObjects(xml: string | Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  const body = Buffer.from(xml);
  return signed("POST", "/bkt?delete", { "content-md5": md5Base64(body), ...headers }, body).then((request) => rawSend(s3.port, request));
}

describe("XML documents", () => {
  it("CompleteMultipartUpload with DOCTYPE/ENTITY, over 2 MiB, or malformed: 400 MalformedXML; the upload then completes", async () => {
    const key = "xml/completed";
    const uploadId = await createUpload(key);
    const part = randomBytes(1024);
    const etag = await uploadPart(key, uploadId, 1, part);

    const laughs = `<?xml version="1.0"?>\n${BILLION_LAUGHS_DTD}\n<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&lol9;</ETag></Part></CompleteMultipartUpload>`;
    const external = `<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}&xxe;</ETag></Part></CompleteMultipartUpload>`;
    const plainDoctype = `<?xml version="1.0"?>\n<!DOCTYPE CompleteMultipartUpload>\n${completeXml([[1, etag]])}`;
    const huge = completeXml([[1, etag]]).replace("<Part>", `<Part>${" ".repeat(2 * 1024 * 1024 + 1)}`);
    for (const [what, xml] of [
      ["billion laughs", laughs],
      ["external entity", external],
      ["plain DOCTYPE", plainDoctype],
      ["over 2 MiB", huge],
      ["unclosed element", "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"],
      ["not XML", "PartNumber=1&ETag=x"],
      ["wrong root", `<Delete>${completeXml([[1, etag]])}</Delete>`],
    ]) {
      const reply = await complete(key, uploadId, xml!);
      expect({ what, status: reply.status, code: reply.code }).toEqual({ what, status: 400, code: "MalformedXML" });
    }
    await expectNothingStored(key);

    const done = await complete(key, uploadId, completeXml([[1, etag]]));
    expect(done.status, done.text).toBe(200);
    delete uploads[uploadId];
    objects.set(key, part);
    await expectNothingStored();
  });

  it("DeleteObjects with DOCTYPE/ENTITY, over 2 MiB, or malformed: 400 MalformedXML, nothing deleted", async () => {
    const laughs = `<?xml version="1.0"?>\n${BILLION_LAUGHS_DTD}\n<Delete><Object><Key>&lol9;</Key></Object><Object><Key>existing</Key></Object></Delete>`;
    const entityKey = `<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY k "existing">]>\n<Delete><Object><Key>&k;</Key></Object></Delete>`;
    const huge = `<Delete>${"<Object><Key>existing</Key></Object>".repeat(Math.ceil((2 * 1024 * 1024) / 36) + 1)}</Delete>`;
    expect(huge.length).toBeGreaterThan(2 * 1024 * 1024);
    for (const [what, xml] of [
      ["billion laughs", laughs],
      ["entity key", entityKey],
      ["over 2 MiB", huge],
      ["unclosed element", "<Delete><Object><Key>existing</Key></Object>"],
      ["mismatched tags", "<Delete><Object><Key>existing</Object></Key></Delete>"],
      ["no objects", "<Delete></Delete>"],
    ]) {
      const reply = await deleteObjects(xml!);
      expect({ what, status: reply.status, code: reply.code }).toEqual({ what, status: 400, code: "MalformedXML" });
    }
    const wrongMd5 = await deleteObjects("<Delete><Object><Key>existing</Key></Object></Delete>", { "content-md5": md5Base64("another document") });
    expectError(wrongMd5, 400, "BadDigest");
    // Over 2 MiB without Content-Length (Transfer-Encoding: chunked): refused while reading.
    const request = await signed("POST", "/bkt?delete", { "transfer-encoding": "chunked" }, undefined, { payloadHash: "UNSIGNED-PAYLOAD" });
    const chunkedBody = Buffer.concat([Buffer.from(`${Buffer.byteLength(huge).toString(16)}\r\n`), Buffer.from(huge), Buffer.from("\r\n0\r\n\r\n")]);
    const chunkedReply = await rawSend(s3.port, { ...request, body: chunkedBody });
    expectError(chunkedReply, 400, "MalformedXML");
    await expectNothingStored();

    // The same endpoint with a plain document does delete.
    await putOk("xml/delete-me", Buffer.from("to be deleted"));
    const ok = await deleteObjects("<Delete><Object><Key>xml/delete-me</Key></Object></Delete>");
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toContain("<Deleted><Key>xml/delete-me</Key></Deleted>");
    objects.delete("xml/delete-me");
    await expectNothingStored("xml/delete-me");
  });
});

// --- multipart uploads ---------------------------------------------------------------------------

describe("multipart uploads", () => {
  const KEY = "mp/object";
  let uploadId = "";
  const small1 = randomBytes(1024);
  const small2 = randomBytes(1024);
  let etag1 = "";
  let etag2 = "";

  // The tests below share one upload with two 1 KiB parts; the last one completes it.
  beforeAll(async () => {
    uploadId = await createUpload(KEY);
    etag1 = await uploadPart(KEY, uploadId, 1, small1);
    etag2 = await uploadPart(KEY, uploadId, 2, small2);
    expect(etag1).toBe(`"${md5Hex(small1)}"`);
    await expectNothingStored(KEY);
  });

  it("Complete with parts out of order: 400 InvalidPartOrder", async () => {
    const reply = await complete(KEY, uploadId, completeXml([[2, etag2], [1, etag1]]));
    expectError(reply, 400, "InvalidPartOrder");
    const repeated = await complete(KEY, uploadId, completeXml([[1, etag1], [1, etag1]]));
    expectError(repeated, 400, "InvalidPartOrder");
    await expectNothingStored(KEY);
  });

  it("Complete with a wrong ETag or a part never uploaded: 400 InvalidPart", async () => {
    expectError(await complete(KEY, uploadId, completeXml([[1, `"${md5Hex("other")}"`], [2, etag2]])), 400, "InvalidPart");
    expectError(await complete(KEY, uploadId, completeXml([[1, etag1], [3, etag2]])), 400, "InvalidPart");
    await expectNothingStored(KEY);
  });

  it("Complete with a 1 KiB part that is not the last: 400 EntityTooSmall", async () => {
    expectError(await complete(KEY, uploadId, completeXml([[1, etag1], [2, etag2]])), 400, "EntityTooSmall");
    await expectNothingStored(KEY);
  });

  it("UploadPart with partNumber 0, 10001 or not a number: 400 InvalidArgument, no part stored", async () => {
    for (const partNumber of ["0", "10001", "abc", "-1", "1.5"]) {
      const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${KEY}?partNumber=${partNumber}&uploadId=${uploadId}`, {}, small1));
      expect({ partNumber, status: reply.status, code: reply.code }).toEqual({ partNumber, status: 400, code: "InvalidArgument" });
    }
    await expectNothingStored(KEY);
  });

  it("UploadPart with a wrong Content-MD5: 400 BadDigest, the earlier part kept", async () => {
    const reply = await rawSend(s3.port, await signed("PUT", `/bkt/${KEY}?partNumber=1&uploadId=${uploadId}`, { "content-md5": md5Base64("other") }, randomBytes(2048)));
    expectError(reply, 400, "BadDigest");
    const parts = await send(s3.port, await signed("GET", `/bkt/${KEY}?uploadId=${uploadId}`));
    expect(parts.status).toBe(200);
    expect(parts.text).toContain(`<ETag>${etag1.replace(/"/g, "&quot;")}</ETag>`);
    await expectNothingStored(KEY);
  });

  it("an unknown uploadId: 404 NoSuchUpload for UploadPart, Complete, Abort and ListParts", async () => {
    for (const unknown of ["0".repeat(32), "not-an-upload-id", `${uploadId.slice(0, -1)}${uploadId.endsWith("0") ? "1" : "0"}`]) {
      const part = await rawSend(s3.port, await signed("PUT", `/bkt/${KEY}?partNumber=1&uploadId=${unknown}`, {}, small1));
      expectError(part, 404, "NoSuchUpload");
      expectError(await complete(KEY, unknown, completeXml([[1, etag1]])), 404, "NoSuchUpload");
      expectError(await send(s3.port, await signed("DELETE", `/bkt/${KEY}?uploadId=${unknown}`)), 404, "NoSuchUpload");
      expectError(await send(s3.port, await signed("GET", `/bkt/${KEY}?uploadId=${unknown}`)), 404, "NoSuchUpload");
    }
    // The right id under another key is not that upload either.
    expectError(await rawSend(s3.port, await signed("PUT", `/bkt/mp/other?partNumber=1&uploadId=${uploadId}`, {}, small1)), 404, "NoSuchUpload");
    await expectNothingStored(KEY, "mp/other");
  });

  it("an aborted upload is gone: its parts removed, UploadPart and Complete then 404 NoSuchUpload", async () => {
    const key = "mp/aborted";
    const aborted = await createUpload(key);
    const etag = await uploadPart(key, aborted, 1, small1);
    await expectNothingStored(key);
    expect((await send(s3.port, await signed("DELETE", `/bkt/${key}?uploadId=${aborted}`))).status).toBe(204);
    delete uploads[aborted];
    await expectNothingStored(key);
    expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}?partNumber=2&uploadId=${aborted}`, {}, small2)), 404, "NoSuchUpload");
    expectError(await complete(key, aborted, completeXml([[1, etag]])), 404, "NoSuchUpload");
    await expectNothingStored(key);
  });

  it("after the failed Completes the upload still completes correctly", async () => {
    const big1 = randomBytes(5 * 1024 * 1024);
    etag1 = await uploadPart(KEY, uploadId, 1, big1);
    const reply = await complete(KEY, uploadId, completeXml([[1, etag1], [2, etag2]]));
    expect(reply.status, reply.text).toBe(200);
    const expectedEtag = `"${createHash("md5")
      .update(Buffer.concat([Buffer.from(md5Hex(big1), "hex"), Buffer.from(md5Hex(small2), "hex")]))
      .digest("hex")}-2"`;
    expect(xmlField(reply.text, "ETag")).toBe(expectedEtag);
    delete uploads[uploadId];
    objects.set(KEY, Buffer.concat([big1, small2]));
    await expectNothingStored();
  });
});

// --- Expect: 100-continue ------------------------------------------------------------------------

describe("Expect: 100-continue", () => {
  async function firstLineFor(request: RawRequest): Promise<{ line: string; connection: RawConnection }> {
    const connection = await RawConnection.connect(s3.port);
    await connection.write(requestHead({ ...request, headers: { ...request.headers, expect: "100-continue" } }));
    return { line: await connection.firstLine(), connection };
  }

  it("a bad signature is answered 403 without 100 Continue, and the body is never needed", async () => {
    const body = randomBytes(100_000);
    const { line, connection } = await firstLineFor(await signed("PUT", "/bkt/expect-bad-signature", {}, body, { secretKey: "not-the-secret-key" }));
    try {
      expect(line).toMatch(/^HTTP\/1\.1 403 /);
      const reply = await connection.response();
      expect(reply.interim).toEqual([]);
      expectError(reply, 403, "SignatureDoesNotMatch");
    } finally {
      connection.destroy();
    }
    await expectNothingStored("expect-bad-signature");
  });

  it("a malformed Content-MD5 or an unsupported header is refused before 100 Continue", async () => {
    const body = randomBytes(1000);
    for (const [headers, status, code] of [
      [{ "content-md5": "not base64!" }, 400, "InvalidDigest"],
      [{ "x-amz-tagging": "a=b" }, 501, "NotImplemented"],
      [{ "x-amz-server-side-encryption": "AES256" }, 501, "NotImplemented"],
    ] as const) {
      const { line, connection } = await firstLineFor(await signed("PUT", "/bkt/expect-refused", headers, body));
      try {
        expect(line, code).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect((await connection.response()).code).toBe(code);
      } finally {
        connection.destroy();
      }
    }
    await expectNothingStored("expect-refused");
  });

  it("a missing bucket and an unknown upload are refused before 100 Continue too", async () => {
    const body = randomBytes(1000);
    for (const [target, code] of [
      ["/nosuchbucket/key", "NoSuchBucket"],
      [`/bkt/mp/x?partNumber=1&uploadId=${"0".repeat(32)}`, "NoSuchUpload"],
    ]) {
      const { line, connection } = await firstLineFor(await signed("PUT", target!, {}, body));
      try {
        expect(line, target).toMatch(/^HTTP\/1\.1 404 /);
        expect((await connection.response()).code).toBe(code);
      } finally {
        connection.destroy();
      }
    }
    await expectNothingStored("mp/x");
  });

  it("control: a good signature gets 100 Continue, then the body is stored", async () => {
    const body = randomBytes(100_000);
    const { line, connection } = await firstLineFor(await signed("PUT", "/bkt/expect-good", {}, body));
    try {
      expect(line).toBe("HTTP/1.1 100 Continue");
      await connection.write(body);
      const reply = await connection.response();
      expect(reply.interim).toEqual([100]);
      expect(reply.status, reply.text).toBe(200);
    } finally {
      connection.destroy();
    }
    objects.set("expect-good", body);
    await expectNothingStored();
  });
});

// --- reads, missing things, unsupported features -------------------------------------------------

describe("reads, missing things and unsupported features", () => {
  it("a Range past the end: 416 InvalidRange with Content-Range bytes */size", async () => {
    for (const range of [`bytes=${EXISTING.length}-`, `bytes=${EXISTING.length + 100}-${EXISTING.length + 200}`]) {
      const reply = await get("/bkt/existing", { range });
      expectError(reply, 416, "InvalidRange");
      expect(reply.headers["content-range"]).toBe(`bytes */${EXISTING.length}`);
    }
  });

  it("HEAD of a missing key or bucket: 404 with an empty body", async () => {
    for (const target of ["/bkt/no-such-key", "/nosuchbucket/key", "/nosuchbucket"]) {
      const reply = await send(s3.port, await signed("HEAD", target));
      expect(reply.status, target).toBe(404);
      expect(reply.body.length, target).toBe(0);
    }
  });

  it("GET in a missing bucket: 404 NoSuchBucket; a missing key: 404 NoSuchKey", async () => {
    expectError(await get("/nosuchbucket"), 404, "NoSuchBucket");
    expectError(await get("/nosuchbucket?list-type=2"), 404, "NoSuchBucket");
    expectError(await get("/nosuchbucket/key"), 404, "NoSuchBucket");
    expectError(await get("/bkt/no-such-key"), 404, "NoSuchKey");
  });

  it("a non-empty x-amz-tagging: 501 NotImplemented; an empty one (Velero AWS plugin 1.14.1) is accepted", async () => {
    const body = Buffer.from("tagged");
    for (const key of ["tagging-set", "existing"]) {
      expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, { "x-amz-tagging": "a=b" }, body)), 501, "NotImplemented");
    }
    await expectNothingStored("tagging-set");
    await putOk("tagging-empty", body, { "x-amz-tagging": "" });
    // CreateMultipartUpload carries the same header (the uploader copies the PutObjectInput).
    expectError(await send(s3.port, await signed("POST", "/bkt/tagging-mp?uploads", { "x-amz-tagging": "a=b" })), 501, "NotImplemented");
    await expectNothingStored("tagging-mp");
    const uploadId = await createUpload("tagging-mp", { "x-amz-tagging": "" });
    expect((await send(s3.port, await signed("DELETE", `/bkt/tagging-mp?uploadId=${uploadId}`))).status).toBe(204);
    delete uploads[uploadId];
    await expectNothingStored("tagging-mp");
  });

  it("x-amz-server-side-encryption: 501 NotImplemented", async () => {
    const body = Buffer.from("encrypt me");
    for (const [key, headers] of [
      ["sse-put", { "x-amz-server-side-encryption": "AES256" }],
      ["existing", { "x-amz-server-side-encryption": "aws:kms" }],
      ["sse-c-put", { "x-amz-server-side-encryption-customer-algorithm": "AES256" }],
    ] as const) {
      expectError(await rawSend(s3.port, await signed("PUT", `/bkt/${key}`, headers, body)), 501, "NotImplemented");
    }
    const create = await send(s3.port, await signed("POST", "/bkt/sse-mp?uploads", { "x-amz-server-side-encryption": "AES256" }));
    expectError(create, 501, "NotImplemented");
    await expectNothingStored("sse-put", "sse-c-put", "sse-mp");
  });
});
