import { createHash, createHmac } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AwsChunkedDecoder, ChunkedEncodingError } from "../../../src/s3/awsChunked.js";
import { S3Error } from "../../../src/s3/errors.js";
import { parseQuery, route } from "../../../src/s3/routing.js";
import {
  authenticate,
  awsUriEncode,
  ChunkSignatureChain,
  EMPTY_SHA256,
  formatAmzDate,
  MAX_PRESIGNED_SECONDS,
  MAX_SKEW_MS,
  parseAmzDate,
  presignGet,
  UNSIGNED_PAYLOAD,
  type AuthContext,
  type SignedRequest,
} from "../../../src/s3/sigv4.js";
import { ACCESS_KEY, SECRET_KEY } from "../../s3/harness.js";
import { presignTarget, signedChunkedPut, signer, signRequest, type RawRequest } from "../../s3/signer.js";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const CREDENTIALS = new Map([[ACCESS_KEY, SECRET_KEY]]);
const HOST = "127.0.0.1:9000";
const NOW = new Date("2026-11-22T10:15:00Z");

/** What the server hands `authenticate`: the raw path, the decoded query (routing.parseQuery), headers by lowercase name. */
function toSigned(raw: { method: string; target: string; headers: Record<string, string> }): SignedRequest {
  const q = raw.target.indexOf("?");
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(raw.headers)) {
    const lower = name.toLowerCase();
    const existing = headers.get(lower);
    headers.set(lower, existing === undefined ? value : `${existing},${value}`);
  }
  return {
    method: raw.method,
    rawPath: q < 0 ? raw.target : raw.target.slice(0, q),
    query: parseQuery(q < 0 ? "" : raw.target.slice(q + 1)),
    header: (name) => headers.get(name),
  };
}

/** A copy of a SignedRequest with some headers replaced (undefined removes one). */
function withHeaders(request: SignedRequest, changes: Record<string, string | undefined>): SignedRequest {
  return { ...request, header: (name) => (Object.hasOwn(changes, name) ? changes[name] : request.header(name)) };
}

async function rejection(promise: Promise<unknown>): Promise<S3Error> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(S3Error);
    return err as S3Error;
  }
  throw new Error("expected an S3Error, the promise resolved");
}

const sha256Hex = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
/** The SigV4 signing key, computed here from the specification (not through src or smithy). */
const signingKeyOf = (secret: string, shortDate: string, region: string) => hmac(hmac(hmac(hmac(`AWS4${secret}`, shortDate), region), "s3"), "aws4_request");
/** RFC 3986 encoding as SigV4 wants it. */
const enc = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * A minimal SigV4 signer written from the AWS specification, independent of src and of smithy:
 * it checks the vectors below and signs requests smithy cannot build.
 */
function specSignature(o: {
  method: string;
  canonicalPath: string;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  signedHeaders: string[];
  payloadHash: string;
  secret: string;
  region: string;
  longDate: string;
}): string {
  const query = o.query
    .map(([n, v]) => [enc(n), enc(v)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([n, v]) => `${n}=${v}`)
    .join("&");
  const headers = o.signedHeaders.map((name) => `${name}:${o.headers[name]!.trim().replace(/\s+/g, " ")}\n`).join("");
  const canonical = [o.method, o.canonicalPath, query, headers, o.signedHeaders.join(";"), o.payloadHash].join("\n");
  const shortDate = o.longDate.slice(0, 8);
  const toSign = ["AWS4-HMAC-SHA256", o.longDate, `${shortDate}/${o.region}/s3/aws4_request`, sha256Hex(canonical)].join("\n");
  return hmac(signingKeyOf(o.secret, shortDate, o.region), toSign).toString("hex");
}

/** A header-auth request for ACCESS_KEY signed with specSignature. */
function specSignedRequest(o: { method?: string; path: string; query?: Array<[string, string]>; headers: Record<string, string>; signedHeaders: string[]; date?: Date }): SignedRequest {
  const longDate = formatAmzDate(o.date ?? NOW);
  const headers: Record<string, string> = { "x-amz-date": longDate, "x-amz-content-sha256": EMPTY_SHA256, ...o.headers };
  const signature = specSignature({
    method: o.method ?? "GET",
    canonicalPath: o.path,
    query: o.query ?? [],
    headers,
    signedHeaders: o.signedHeaders,
    payloadHash: headers["x-amz-content-sha256"]!,
    secret: SECRET_KEY,
    region: "us-east-1",
    longDate,
  });
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/${longDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=${o.signedHeaders.join(";")}, Signature=${signature}`;
  const target = `${o.path}${o.query?.length ? "?" : ""}${(o.query ?? []).map(([n, v]) => `${enc(n)}=${enc(v)}`).join("&")}`;
  return toSigned({ method: o.method ?? "GET", target, headers });
}

// ---------------------------------------------------------------------------------------------
// The AWS documentation vectors (S3 API reference, "Authenticating Requests (AWS Signature Version 4)")
// ---------------------------------------------------------------------------------------------

const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AWS_CREDENTIALS = new Map([[AWS_KEY, AWS_SECRET]]);
const AWS_DATE = new Date("2013-05-24T00:00:00Z");
const AWS_SCOPE = "20130524/us-east-1/s3/aws4_request";

/** Header auth, GET Object: GET /test.txt with Range: bytes=0-9. */
const AWS_GET_SIGNATURE = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
const awsGetHeaders = {
  host: "examplebucket.s3.amazonaws.com",
  range: "bytes=0-9",
  "x-amz-content-sha256": EMPTY_SHA256,
  "x-amz-date": "20130524T000000Z",
  authorization: `AWS4-HMAC-SHA256 Credential=${AWS_KEY}/${AWS_SCOPE},SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${AWS_GET_SIGNATURE}`,
};
const awsGet = () => toSigned({ method: "GET", target: "/test.txt", headers: awsGetHeaders });

/** Query auth, presigned GET /test.txt, 86400 s. */
const AWS_PRESIGNED_SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
const awsPresignedQuery = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${AWS_KEY}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host`;
const awsPresigned = (query = `${awsPresignedQuery}&X-Amz-Signature=${AWS_PRESIGNED_SIGNATURE}`) =>
  toSigned({ method: "GET", target: `/test.txt?${query}`, headers: { host: "examplebucket.s3.amazonaws.com" } });

/** Chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): seed signature and the three chunk signatures. */
const AWS_SEED_SIGNATURE = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const AWS_CHUNK_SIGNATURES = [
  "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
const AWS_CHUNKS = [Buffer.alloc(65536, "a"), Buffer.alloc(1024, "a"), Buffer.alloc(0)];
const awsSeed = () =>
  toSigned({
    method: "PUT",
    target: "/examplebucket/chunkObject.txt",
    headers: {
      host: "s3.amazonaws.com",
      "x-amz-date": "20130524T000000Z",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": "66560",
      "content-length": "66824",
      authorization: `AWS4-HMAC-SHA256 Credential=${AWS_KEY}/${AWS_SCOPE},SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${AWS_SEED_SIGNATURE}`,
    },
  });
const awsChunkedBody = () =>
  Buffer.concat(AWS_CHUNKS.flatMap((chunk, i) => [Buffer.from(`${chunk.length.toString(16)};chunk-signature=${AWS_CHUNK_SIGNATURES[i]}\r\n`), chunk, Buffer.from("\r\n")]));

describe("the AWS documentation vectors", () => {
  it("the spec signer of this test reproduces the header and presigned vectors (so it can be trusted below)", () => {
    expect(
      specSignature({
        method: "GET",
        canonicalPath: "/test.txt",
        query: [],
        headers: awsGetHeaders,
        signedHeaders: ["host", "range", "x-amz-content-sha256", "x-amz-date"],
        payloadHash: EMPTY_SHA256,
        secret: AWS_SECRET,
        region: "us-east-1",
        longDate: "20130524T000000Z",
      }),
    ).toBe(AWS_GET_SIGNATURE);
    expect(
      specSignature({
        method: "GET",
        canonicalPath: "/test.txt",
        query: parseQuery(awsPresignedQuery),
        headers: { host: "examplebucket.s3.amazonaws.com" },
        signedHeaders: ["host"],
        payloadHash: UNSIGNED_PAYLOAD,
        secret: AWS_SECRET,
        region: "us-east-1",
        longDate: "20130524T000000Z",
      }),
    ).toBe(AWS_PRESIGNED_SIGNATURE);
  });

  it("verifies the header-auth GET Object example and returns its context", async () => {
    const ctx = await authenticate(awsGet(), AWS_CREDENTIALS, AWS_DATE);
    expect(ctx).toEqual({
      accessKey: AWS_KEY,
      region: "us-east-1",
      longDate: "20130524T000000Z",
      scope: AWS_SCOPE,
      signature: AWS_GET_SIGNATURE,
      signingKey: signingKeyOf(AWS_SECRET, "20130524", "us-east-1"),
      presigned: false,
    });
  });

  it("refuses the GET Object example when anything signed is changed", async () => {
    const cases: SignedRequest[] = [
      withHeaders(awsGet(), { range: "bytes=0-10" }),
      withHeaders(awsGet(), { host: "otherbucket.s3.amazonaws.com" }),
      withHeaders(awsGet(), { "x-amz-content-sha256": UNSIGNED_PAYLOAD }),
      withHeaders(awsGet(), { "x-amz-date": "20130524T000001Z" }),
      { ...awsGet(), rawPath: "/test.txt2" },
      { ...awsGet(), method: "HEAD" },
      { ...awsGet(), query: [["x-id", "GetObject"]] },
    ];
    for (const request of cases) {
      const err = await rejection(authenticate(request, AWS_CREDENTIALS, AWS_DATE));
      expect(err.code).toBe("SignatureDoesNotMatch");
      expect(err.status).toBe(403);
      expect(err.message).toBe("The request signature we calculated does not match the signature you provided. Check your key and signing method.");
    }
    const wrongSecret = await rejection(authenticate(awsGet(), new Map([[AWS_KEY, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"]]), AWS_DATE));
    expect(wrongSecret.code).toBe("SignatureDoesNotMatch");
  });

  it("ignores whitespace that canonicalisation removes from signed header values", async () => {
    await expect(authenticate(withHeaders(awsGet(), { range: "  bytes=0-9 " }), AWS_CREDENTIALS, AWS_DATE)).resolves.toMatchObject({ accessKey: AWS_KEY });
  });

  it("accepts the example up to 15 minutes from the server's clock either way, and not beyond", async () => {
    await expect(authenticate(awsGet(), AWS_CREDENTIALS, new Date(AWS_DATE.getTime() + MAX_SKEW_MS))).resolves.toMatchObject({ accessKey: AWS_KEY });
    await expect(authenticate(awsGet(), AWS_CREDENTIALS, new Date(AWS_DATE.getTime() - MAX_SKEW_MS))).resolves.toMatchObject({ accessKey: AWS_KEY });
    for (const now of [new Date(AWS_DATE.getTime() + MAX_SKEW_MS + 1), new Date(AWS_DATE.getTime() - MAX_SKEW_MS - 1000), new Date("2026-01-01T00:00:00Z")]) {
      const err = await rejection(authenticate(awsGet(), AWS_CREDENTIALS, now));
      expect(err.code).toBe("RequestTimeTooSkewed");
      expect(err.status).toBe(403);
      expect(err.message).toBe("The difference between the request time and the server's time is too large.");
      expect(err.extra).toEqual({ RequestTime: "20130524T000000Z", ServerTime: now.toISOString(), MaxAllowedSkewMilliseconds: "900000" });
    }
  });

  it("verifies the presigned GET example while it is valid", async () => {
    for (const now of [new Date(AWS_DATE.getTime() - MAX_SKEW_MS), AWS_DATE, new Date(AWS_DATE.getTime() + 3_600_000), new Date(AWS_DATE.getTime() + 86_400_000)]) {
      const ctx = await authenticate(awsPresigned(), AWS_CREDENTIALS, now);
      expect(ctx).toEqual({
        accessKey: AWS_KEY,
        region: "us-east-1",
        longDate: "20130524T000000Z",
        scope: AWS_SCOPE,
        signature: AWS_PRESIGNED_SIGNATURE,
        signingKey: signingKeyOf(AWS_SECRET, "20130524", "us-east-1"),
        presigned: true,
      });
    }
  });

  it("refuses the presigned GET example once expired (AccessDenied, Request has expired)", async () => {
    const now = new Date(AWS_DATE.getTime() + 86_400_000 + 1);
    const err = await rejection(authenticate(awsPresigned(), AWS_CREDENTIALS, now));
    expect(err.code).toBe("AccessDenied");
    expect(err.status).toBe(403);
    expect(err.message).toBe("Request has expired");
    expect(err.extra).toEqual({ "X-Amz-Expires": "86400", Expires: "2013-05-25T00:00:00.000Z", ServerTime: now.toISOString() });
  });

  it("refuses the presigned GET example before it is valid (more than 15 minutes early)", async () => {
    const err = await rejection(authenticate(awsPresigned(), AWS_CREDENTIALS, new Date(AWS_DATE.getTime() - MAX_SKEW_MS - 1)));
    expect(err.code).toBe("AccessDenied");
    expect(err.message).toBe("Request is not valid yet: X-Amz-Date is more than 15 minutes in the future");
  });

  it("refuses the presigned GET example when anything signed is changed", async () => {
    const sig = `X-Amz-Signature=${AWS_PRESIGNED_SIGNATURE}`;
    const cases: SignedRequest[] = [
      awsPresigned(`${awsPresignedQuery.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401")}&${sig}`),
      awsPresigned(`${awsPresignedQuery}&x-id=GetObject&${sig}`),
      { ...awsPresigned(), rawPath: "/test.txt2" },
      { ...awsPresigned(), method: "PUT" },
      withHeaders(awsPresigned(), { host: "examplebucket.s3.amazonaws.com:443" }),
    ];
    for (const request of cases) {
      expect((await rejection(authenticate(request, AWS_CREDENTIALS, AWS_DATE))).code).toBe("SignatureDoesNotMatch");
    }
  });

  it("verifies the chunked-upload example's seed signature", async () => {
    const ctx = await authenticate(awsSeed(), AWS_CREDENTIALS, AWS_DATE);
    expect(ctx).toMatchObject({ accessKey: AWS_KEY, scope: AWS_SCOPE, signature: AWS_SEED_SIGNATURE, presigned: false });
  });

  it("chains the example's chunk signatures from a hand-made AuthContext", () => {
    const auth: AuthContext = {
      accessKey: AWS_KEY,
      region: "us-east-1",
      longDate: "20130524T000000Z",
      scope: AWS_SCOPE,
      signature: AWS_SEED_SIGNATURE,
      signingKey: signingKeyOf(AWS_SECRET, "20130524", "us-east-1"),
      presigned: false,
    };
    const chain = new ChunkSignatureChain(auth);
    AWS_CHUNKS.forEach((chunk, i) => expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[i]!, sha256Hex(chunk))).toBe(true));
  });

  it("refuses chunk signatures out of order, for other data, or from another seed, and does not advance on a failure", () => {
    const auth = (signature: string): AuthContext => ({
      accessKey: AWS_KEY,
      region: "us-east-1",
      longDate: "20130524T000000Z",
      scope: AWS_SCOPE,
      signature,
      signingKey: signingKeyOf(AWS_SECRET, "20130524", "us-east-1"),
      presigned: false,
    });
    const chain = new ChunkSignatureChain(auth(AWS_SEED_SIGNATURE));
    expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[1]!, sha256Hex(AWS_CHUNKS[1]!))).toBe(false);
    expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[0]!, sha256Hex(Buffer.alloc(65536, "b")))).toBe(false);
    expect(chain.verifyChunk("0".repeat(64), sha256Hex(AWS_CHUNKS[0]!))).toBe(false);
    expect(chain.verifyChunk("z".repeat(64), sha256Hex(AWS_CHUNKS[0]!))).toBe(false);
    expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[0]!.slice(0, 62), sha256Hex(AWS_CHUNKS[0]!))).toBe(false);
    // The failures above left the chain at the seed: the real sequence still verifies.
    AWS_CHUNKS.forEach((chunk, i) => expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[i]!, sha256Hex(chunk))).toBe(true));
    // A replayed last signature does not verify again (its predecessor changed).
    expect(chain.verifyChunk(AWS_CHUNK_SIGNATURES[2]!, sha256Hex(AWS_CHUNKS[2]!))).toBe(false);

    const otherSeed = new ChunkSignatureChain(auth(`${AWS_SEED_SIGNATURE.slice(0, 63)}b`));
    expect(otherSeed.verifyChunk(AWS_CHUNK_SIGNATURES[0]!, sha256Hex(AWS_CHUNKS[0]!))).toBe(false);
  });

  it("decodes the example's whole 66824-byte body with the chain from authenticate", async () => {
    const body = awsChunkedBody();
    expect(body.length).toBe(66824);
    const chain = new ChunkSignatureChain(await authenticate(awsSeed(), AWS_CREDENTIALS, AWS_DATE));
    const decoder = new AwsChunkedDecoder({ signed: true, verifyChunk: chain.verifyChunk });
    const out: Buffer[] = [];
    await pipeline(Readable.from([body.subarray(0, 70_000 % body.length), body.subarray(70_000 % body.length)]), decoder, async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) out.push(piece);
    });
    expect(Buffer.concat(out).equals(Buffer.alloc(66560, "a"))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Requests signed by the AWS SDK's signer (@smithy/signature-v4), random everything
// ---------------------------------------------------------------------------------------------

const keyChar = fc.constantFrom("a", "Z", "0", "-", "_", ".", "~", " ", "+", "!", "'", "(", ")", "*", "$", "&", ",", ";", "=", ":", "@", "%", "é", "€", "😀", "/", "?", "#");
const keyArb = fc.string({ unit: keyChar, minLength: 1, maxLength: 16 });
const bucketArb = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]$/);
/** Query names that are neither auth parameters nor names of Object.prototype (those have their own test). */
const queryNameArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((n) => !(n in Object.prototype));
const queryValueArb = fc.string({ unit: fc.oneof(fc.constantFrom("+", " ", "&", "=", "%", "/", "é", "😀"), fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 })), maxLength: 12 });
const queryArb = fc.array(fc.tuple(queryNameArb, queryValueArb), { maxLength: 4 });
const headerValueArb = fc.stringMatching(/^[\x21-\x7e](?:[\x20-\x7e]{0,20}[\x21-\x7e])?$/);
const metaArb = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z0-9]{1,10}$/), headerValueArb), { selector: ([n]) => n, minLength: 1, maxLength: 3 });
const regionArb = fc.oneof(fc.constant("us-east-1"), fc.stringMatching(/^[a-z]{2}-[a-z]{2,9}-[1-9]$/), fc.stringMatching(/^[a-z0-9]{1,12}$/));
const methodArb = fc.constantFrom("GET", "PUT", "HEAD", "DELETE", "POST");
/** Whole seconds: X-Amz-Date has no fraction. */
const dateArb = fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }).map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));

/** The path as the AWS SDKs send it: every segment RFC 3986-encoded. */
const awsPath = (bucket: string, key: string) => `/${bucket}/${key.split("/").map(enc).join("/")}`;
/** The path as Go's net/url sends it: sub-delims and ':' '@' left alone. */
const goPath = (bucket: string, key: string) => awsPath(bucket, key).replace(/%(21|24|26|27|28|29|2A|2B|2C|3B|3D|3A|40)/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
const queryString = (query: Array<[string, string]>) => query.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join("&");

interface HeaderCase {
  method: string;
  bucket: string;
  key: string;
  query: Array<[string, string]>;
  meta: Array<[string, string]>;
  region: string;
  date: Date;
  skewMs: number;
}

const headerCaseArb: fc.Arbitrary<HeaderCase> = fc.record({
  method: methodArb,
  bucket: bucketArb,
  key: keyArb,
  query: queryArb,
  meta: metaArb,
  region: regionArb,
  date: dateArb,
  // Two seconds of margin so a one-second change of X-Amz-Date stays within the allowed skew.
  skewMs: fc.integer({ min: -MAX_SKEW_MS + 2000, max: MAX_SKEW_MS - 2000 }),
});

async function signHeaderCase(c: HeaderCase, options: { secretKey?: string; path?: string } = {}): Promise<RawRequest> {
  const path = options.path ?? awsPath(c.bucket, c.key);
  const target = `${path}${c.query.length ? `?${queryString(c.query)}` : ""}`;
  const headers = Object.fromEntries(c.meta.map(([n, v]) => [`x-amz-meta-${n}`, v]));
  return signRequest({ method: c.method, target, headers }, HOST, { date: c.date, region: c.region, secretKey: options.secretKey });
}

const otherDateSameDay = (longDate: string) => {
  const date = parseAmzDate(longDate)!;
  return formatAmzDate(new Date(date.getTime() + (longDate.endsWith("000000Z") ? 1000 : -1000)));
};

describe("authenticate: header auth signed by @smithy/signature-v4 (properties)", () => {
  it("verifies any request the SDK signer signs, for any method, path, query, headers, region and date within the skew", async () => {
    await fc.assert(
      fc.asyncProperty(headerCaseArb, async (c) => {
        const raw = await signHeaderCase(c);
        const request = toSigned(raw);
        const ctx = await authenticate(request, CREDENTIALS, new Date(c.date.getTime() + c.skewMs));
        const longDate = formatAmzDate(c.date);
        expect(ctx).toEqual({
          accessKey: ACCESS_KEY,
          region: c.region,
          longDate,
          scope: `${longDate.slice(0, 8)}/${c.region}/s3/aws4_request`,
          signature: /Signature=([0-9a-f]{64})/.exec(raw.headers.authorization!)![1],
          signingKey: signingKeyOf(SECRET_KEY, longDate.slice(0, 8), c.region),
          presigned: false,
        });
        // The path it was signed for routes to its bucket and key.
        expect(route("GET", request.rawPath, HOST, [])).toMatchObject({ bucket: c.bucket, key: c.key });
      }),
      { numRuns: 150 },
    );
  });

  it("verifies a path signed in the AWS encoding but sent the way Go's net/url encodes it", async () => {
    await fc.assert(
      fc.asyncProperty(headerCaseArb, async (c) => {
        const raw = await signHeaderCase(c);
        const request = { ...toSigned(raw), rawPath: goPath(c.bucket, c.key) };
        await expect(authenticate(request, CREDENTIALS, new Date(c.date.getTime() + c.skewMs))).resolves.toMatchObject({ accessKey: ACCESS_KEY });
      }),
      { numRuns: 60 },
    );
  });

  const mutations = ["header value", "host", "path", "query value", "added query", "method", "date", "region", "payload hash", "signature"] as const;

  it("refuses (SignatureDoesNotMatch) any request with a signed element changed", async () => {
    await fc.assert(
      fc.asyncProperty(headerCaseArb, fc.constantFrom(...mutations), async (c, mutation) => {
        const raw = await signHeaderCase(c);
        const request = toSigned(raw);
        const now = new Date(c.date.getTime() + c.skewMs);
        const auth = raw.headers.authorization!;
        const [metaName, metaValue] = c.meta[0]!;
        let changed: SignedRequest;
        switch (mutation) {
          case "header value":
            changed = withHeaders(request, { [`x-amz-meta-${metaName}`]: `${metaValue}x` });
            break;
          case "host":
            changed = withHeaders(request, { host: "127.0.0.1:9001" });
            break;
          case "path":
            changed = { ...request, rawPath: `${request.rawPath}x` };
            break;
          case "query value":
            changed = { ...request, query: c.query.length ? [[c.query[0]![0], `${c.query[0]![1]}x`], ...c.query.slice(1)] : [["x", ""]] };
            break;
          case "added query":
            changed = { ...request, query: [...request.query, ["x-id", "PutObject"]] };
            break;
          case "method":
            changed = { ...request, method: c.method === "GET" ? "HEAD" : "GET" };
            break;
          case "date":
            changed = withHeaders(request, { "x-amz-date": otherDateSameDay(request.header("x-amz-date")!) });
            break;
          case "region":
            changed = withHeaders(request, { authorization: auth.replace(`/${c.region}/s3/`, `/${c.region === "us-east-1" ? "eu-west-1" : "us-east-1"}/s3/`) });
            break;
          case "payload hash":
            changed = withHeaders(request, { "x-amz-content-sha256": sha256Hex("not empty") });
            break;
          case "signature": {
            const sig = /Signature=([0-9a-f]{64})/.exec(auth)![1]!;
            const flipped = `${sig.slice(0, 10)}${sig[10] === "0" ? "1" : "0"}${sig.slice(11)}`;
            changed = withHeaders(request, { authorization: auth.replace(sig, flipped) });
            break;
          }
        }
        const err = await rejection(authenticate(changed, CREDENTIALS, now));
        expect(err.code).toBe("SignatureDoesNotMatch");
      }),
      { numRuns: 200 },
    );
  });

  it("refuses (SignatureDoesNotMatch) any request signed with another secret for the same access key", async () => {
    await fc.assert(
      fc.asyncProperty(headerCaseArb, fc.stringMatching(/^[A-Za-z0-9/+]{8,40}$/), async (c, secret) => {
        fc.pre(secret !== SECRET_KEY);
        const raw = await signHeaderCase(c, { secretKey: secret });
        const err = await rejection(authenticate(toSigned(raw), CREDENTIALS, new Date(c.date.getTime() + c.skewMs)));
        expect(err.code).toBe("SignatureDoesNotMatch");
      }),
      { numRuns: 50 },
    );
  });

  it("refuses (RequestTimeTooSkewed) any request more than 15 minutes off the server's clock", async () => {
    await fc.assert(
      fc.asyncProperty(headerCaseArb, fc.integer({ min: MAX_SKEW_MS + 1, max: 10 * 365 * 24 * 3600 * 1000 }), fc.boolean(), async (c, off, late) => {
        const raw = await signHeaderCase(c);
        const now = new Date(c.date.getTime() + (late ? off : -off));
        const err = await rejection(authenticate(toSigned(raw), CREDENTIALS, now));
        expect(err.code).toBe("RequestTimeTooSkewed");
        expect(err.extra).toEqual({ RequestTime: formatAmzDate(c.date), ServerTime: now.toISOString(), MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS) });
      }),
      { numRuns: 50 },
    );
  });
});

describe("authenticate: requests signed by an implementation of the specification (property)", () => {
  const headerName = fc.oneof(
    fc.constantFrom("date", "user-agent", "expect", "transfer-encoding", "content-type", "content-md5", "x-amz-meta-a", "x-amz-tagging", "constructor", "proxy-x", "sec-x"),
    fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,12}$/),
  );
  // Printable ASCII with runs of spaces and tabs inside (canonicalisation folds them).
  const headerValue = fc.string({ unit: fc.oneof(fc.constantFrom(" ", "  ", "\t", " \t "), fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }).filter((c) => c >= "!" && c <= "~")), minLength: 1, maxLength: 16 });
  const queryName = fc.oneof(
    fc.constantFrom("constructor", "toString", "__proto__", "hasOwnProperty", "a+b", "a b", "é", "x-id", "prefix", "X-Amz-Meta"),
    fc.string({ unit: "grapheme", maxLength: 8 }),
  ).filter((n) => !["X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential", "AWSAccessKeyId", "Signature"].includes(n));

  it("verifies them, whichever headers are signed (date, user-agent and other names smithy treats specially included) and whatever the query", async () => {
    await fc.assert(
      fc.asyncProperty(
        methodArb,
        bucketArb,
        keyArb,
        fc.array(fc.tuple(queryName, fc.string({ unit: "grapheme", maxLength: 8 })), { maxLength: 5 }),
        fc.uniqueArray(fc.tuple(headerName, headerValue), { selector: ([n]) => n, maxLength: 5 }).map((hs) => hs.filter(([n]) => !["host", "x-amz-date", "x-amz-content-sha256", "authorization"].includes(n))),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        async (method, bucket, key, query, extra, signIt) => {
          const signedHeaders = ["host", "x-amz-content-sha256", "x-amz-date", ...extra.filter((_, i) => signIt[i]).map(([n]) => n)].sort();
          const request = specSignedRequest({ method, path: awsPath(bucket, key), query, headers: { host: HOST, ...Object.fromEntries(extra) }, signedHeaders });
          await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
          const signedExtra = extra.find((_, i) => signIt[i]);
          if (signedExtra) {
            const changed = withHeaders(request, { [signedExtra[0]]: `${signedExtra[1]}x` });
            expect((await rejection(authenticate(changed, CREDENTIALS, NOW))).code).toBe("SignatureDoesNotMatch");
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("authenticate: header auth edge cases", () => {
  const base = async (extra: Record<string, string> = {}, target = "/bkt/key") => toSigned(await signRequest({ method: "GET", target, headers: extra }, HOST, { date: NOW }));

  it("verifies duplicate headers joined with ',' as SigV4 canonicalises them", async () => {
    const request = specSignedRequest({ path: "/bkt/key", headers: { host: HOST, "x-amz-meta-a": "one,two" }, signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-a"] });
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
  });

  it("verifies a request whose x-amz-content-sha256 is sent but not signed (its value is still the payload hash)", async () => {
    const request = specSignedRequest({ method: "PUT", path: "/bkt/key", headers: { host: HOST, "x-amz-content-sha256": UNSIGNED_PAYLOAD }, signedHeaders: ["host", "x-amz-date"] });
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
    // Its value is still the payload hash of the canonical request.
    expect((await rejection(authenticate(withHeaders(request, { "x-amz-content-sha256": EMPTY_SHA256 }), CREDENTIALS, NOW))).code).toBe("SignatureDoesNotMatch");
  });

  it("refuses a header-authenticated request without x-amz-content-sha256 (InvalidRequest, as S3 does)", async () => {
    const request = specSignedRequest({ path: "/bkt/key", headers: { host: HOST }, signedHeaders: ["host", "x-amz-date"] });
    const err = await rejection(authenticate(withHeaders(request, { "x-amz-content-sha256": undefined }), CREDENTIALS, NOW));
    expect(err.code).toBe("InvalidRequest");
    expect(err.status).toBe(400);
    expect(err.message).toBe("Missing required header for this request: x-amz-content-sha256");
  });

  it("verifies requests that sign only some headers, ignoring unsigned ones", async () => {
    const request = toSigned(await signRequest({ method: "PUT", target: "/bkt/key", headers: { "content-type": "text/plain", "x-amz-meta-a": "1" } }, HOST, { date: NOW, unsigned: ["content-type"] }));
    await expect(authenticate(withHeaders(request, { "content-type": "application/json", "user-agent": "x" }), CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
  });

  it("verifies a request that also signs the Date header (clients may sign any header they send)", async () => {
    const request = specSignedRequest({
      path: "/bkt/key",
      headers: { host: HOST, date: NOW.toUTCString() },
      signedHeaders: ["date", "host", "x-amz-content-sha256", "x-amz-date"],
    });
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
  });

  it.each(["constructor", "toString", "__proto__", "hasOwnProperty"])("verifies a request with a query parameter named %s", async (name) => {
    const request = specSignedRequest({ path: "/bkt/key", query: [[name, "1"]], headers: { host: HOST }, signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date"] });
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
  });

  it("verifies repeated query parameters in any order (values are sorted in the canonical query)", async () => {
    const query: Array<[string, string]> = [
      ["b", "2"],
      ["a", "z"],
      ["a", "y"],
      ["a", ""],
    ];
    const request = specSignedRequest({ path: "/bkt/key", query, headers: { host: HOST }, signedHeaders: ["host", "x-amz-content-sha256", "x-amz-date"] });
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
    await expect(authenticate({ ...request, query: [...query].reverse() }, CREDENTIALS, NOW)).resolves.toMatchObject({ accessKey: ACCESS_KEY });
    expect((await rejection(authenticate({ ...request, query: query.slice(1) }, CREDENTIALS, NOW))).code).toBe("SignatureDoesNotMatch");
  });

  it("refuses a request without any authentication (AccessDenied)", async () => {
    const err = await rejection(authenticate(toSigned({ method: "GET", target: "/bkt/key", headers: { host: HOST } }), CREDENTIALS, NOW));
    expect(err.code).toBe("AccessDenied");
    expect(err.status).toBe(403);
    expect(err.message).toBe("anonymous requests are not allowed: sign requests with AWS Signature Version 4");
  });

  it("refuses Signature Version 2 in the header and in the query (AccessDenied)", async () => {
    const header = await rejection(authenticate(toSigned({ method: "GET", target: "/bkt/key", headers: { host: HOST, authorization: "AWS AKIAAPPSNAPSHOTSTEST:frJIUN8DYpKDtOLCwo//yllqDzg=" } }), CREDENTIALS, NOW));
    expect(header.code).toBe("AccessDenied");
    expect(header.message).toBe("Signature Version 2 is not supported; sign requests with Signature Version 4 (AWS4-HMAC-SHA256)");
    const query = await rejection(
      authenticate(toSigned({ method: "GET", target: "/bkt/key?AWSAccessKeyId=AKIAAPPSNAPSHOTSTEST&Expires=1893456000&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D", headers: { host: HOST } }), CREDENTIALS, NOW),
    );
    expect(query.code).toBe("AccessDenied");
    expect(query.message).toBe("Signature Version 2 presigned URLs are not supported; presign with Signature Version 4 (AWS4-HMAC-SHA256)");
  });

  it("refuses SigV4a (NotImplemented)", async () => {
    const request = withHeaders(await base(), { authorization: `AWS4-ECDSA-P256-SHA256 Credential=${ACCESS_KEY}/20261122/s3/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3045` });
    const err = await rejection(authenticate(request, CREDENTIALS, NOW));
    expect(err.code).toBe("NotImplemented");
    expect(err.status).toBe(501);
    expect(err.message).toBe("SigV4a (AWS4-ECDSA-P256-SHA256) is not supported; use AWS4-HMAC-SHA256");
  });

  it("refuses malformed Authorization headers and credential scopes (AuthorizationHeaderMalformed)", async () => {
    const request = await base();
    const auth = request.header("authorization")!;
    const sig = /Signature=([0-9a-f]{64})/.exec(auth)![1]!;
    const withCredential = (credential: string) => auth.replace(/Credential=[^,]+/, `Credential=${credential}`);
    const cases: Array<[string, string, Record<string, string>?]> = [
      ["Bearer abc", 'the Authorization header must start with "AWS4-HMAC-SHA256 "'],
      ["AWS4-HMAC-SHA256", 'the Authorization header must start with "AWS4-HMAC-SHA256 "'],
      ["aws4-hmac-sha256 Credential=x", 'the Authorization header must start with "AWS4-HMAC-SHA256 "'],
      ["AWS4-HMAC-SHA256 Credential", "the Authorization header is not Credential=…, SignedHeaders=…, Signature=…"],
      ["AWS4-HMAC-SHA256 =abc, SignedHeaders=host", "the Authorization header is not Credential=…, SignedHeaders=…, Signature=…"],
      [`AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/20261122/us-east-1/s3/aws4_request, SignedHeaders=host`, "the Authorization header needs Credential, SignedHeaders and Signature"],
      [`AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=${sig}`, "the Authorization header needs Credential, SignedHeaders and Signature"],
      [withCredential(`${ACCESS_KEY}/20261122/us-east-1/s3`), "the credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request"],
      [withCredential(`${ACCESS_KEY}/20261122/us-east-1/s3/aws4_request/x`), "the credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request"],
      [withCredential("/20261122/us-east-1/s3/aws4_request"), "the credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request"],
      [withCredential(`${ACCESS_KEY}/20261122/us-east-1/ec2/aws4_request`), 'the credential scope names service "ec2"; this is an s3 endpoint'],
      [withCredential(`${ACCESS_KEY}/20261122/us-east-1/s3/aws5_request`), 'the credential scope must end with "aws4_request"'],
      [withCredential(`${ACCESS_KEY}/20261122//s3/aws4_request`), "the credential scope's region is not a region name"],
      [withCredential(`${ACCESS_KEY}/20261122/us east/s3/aws4_request`), "the credential scope's region is not a region name"],
      [withCredential(`${ACCESS_KEY}/20261122/us:east/s3/aws4_request`), "the credential scope's region is not a region name"],
      [withCredential(`${ACCESS_KEY}/20261122/${"a".repeat(65)}/s3/aws4_request`), "the credential scope's region is not a region name"],
      [withCredential(`${ACCESS_KEY}/20261121/us-east-1/s3/aws4_request`), "the credential date 20261121 is not the date of X-Amz-Date 20261122T101500Z", { Region: "us-east-1" }],
      [withCredential(`${ACCESS_KEY}/2026112/us-east-1/s3/aws4_request`), "the credential date 2026112 is not the date of X-Amz-Date 20261122T101500Z", { Region: "us-east-1" }],
      [auth.replace(/SignedHeaders=[^,]+/, "SignedHeaders=Host;x-amz-content-sha256;x-amz-date"), "SignedHeaders must be lowercase header names separated by ';'"],
      [auth.replace(/SignedHeaders=[^,]+/, "SignedHeaders=host;;x-amz-date"), "SignedHeaders must be lowercase header names separated by ';'"],
      [auth.replace(/SignedHeaders=[^,]+/, "SignedHeaders=x-amz-content-sha256;x-amz-date"), "SignedHeaders must include host"],
      [auth.replace(sig, sig.toUpperCase()), "the signature must be 64 lowercase hex digits"],
      [auth.replace(sig, sig.slice(1)), "the signature must be 64 lowercase hex digits"],
      [auth.replace(sig, `${sig.slice(1)}g`), "the signature must be 64 lowercase hex digits"],
    ];
    for (const [authorization, message, extra] of cases) {
      const err = await rejection(authenticate(withHeaders(request, { authorization }), CREDENTIALS, NOW));
      expect([authorization, err.code, err.message]).toEqual([authorization, "AuthorizationHeaderMalformed", message]);
      expect(err.status).toBe(400);
      expect(err.extra).toEqual(extra ?? {});
    }
  });

  it("refuses a missing or malformed x-amz-date (AccessDenied)", async () => {
    const request = await base();
    const missing = await rejection(authenticate(withHeaders(request, { "x-amz-date": undefined }), CREDENTIALS, NOW));
    expect(missing.code).toBe("AccessDenied");
    expect(missing.message).toBe("AWS authentication requires an x-amz-date header");
    for (const date of ["2026-11-22T10:15:00Z", "20261122T101500", "20261122t101500z", "20261131T101500Z", "20261122T246000Z", ""]) {
      const err = await rejection(authenticate(withHeaders(request, { "x-amz-date": date }), CREDENTIALS, NOW));
      expect(err.code).toBe("AccessDenied");
      expect(err.message).toBe(`X-Amz-Date must look like 20060102T150405Z, not "${date}"`);
    }
  });

  it("refuses an unknown access key (InvalidAccessKeyId), printing it safely", async () => {
    const request = await base();
    const auth = request.header("authorization")!;
    const err = await rejection(authenticate(withHeaders(request, { authorization: auth.replace(ACCESS_KEY, "AKIAUNKNOWNKEY") }), CREDENTIALS, NOW));
    expect(err.code).toBe("InvalidAccessKeyId");
    expect(err.status).toBe(403);
    expect(err.message).toBe('the access key id "AKIAUNKNOWNKEY" is not known to this server');
    const odd = await rejection(authenticate(withHeaders(request, { authorization: auth.replace(ACCESS_KEY, "AKIA\tX\u00e9") }), CREDENTIALS, NOW));
    expect(odd.message).toBe('the access key id "AKIA?X?" is not known to this server');
  });

  it("refuses a request missing a header it signed (SignatureDoesNotMatch naming the header)", async () => {
    const request = await base({ "x-amz-meta-a": "1" });
    const err = await rejection(authenticate(withHeaders(request, { "x-amz-meta-a": undefined }), CREDENTIALS, NOW));
    expect(err.code).toBe("SignatureDoesNotMatch");
    expect(err.message).toBe('the signed header "x-amz-meta-a" is missing from the request');
  });

  it("refuses the Authorization header together with query-string authentication (InvalidArgument)", async () => {
    const request = await base();
    const target = await presignTarget("GET", "/bkt/key", HOST, { date: NOW });
    const both = { ...toSigned({ method: "GET", target, headers: { host: HOST } }), header: request.header };
    const err = await rejection(authenticate(both, CREDENTIALS, NOW));
    expect(err.code).toBe("InvalidArgument");
    expect(err.message).toBe("a request may use the Authorization header or query-string authentication, not both");
  });
});

// ---------------------------------------------------------------------------------------------
// Presigned URLs
// ---------------------------------------------------------------------------------------------

interface PresignCase {
  method: string;
  bucket: string;
  key: string;
  query: Array<[string, string]>;
  region: string;
  date: Date;
  expires: number;
  /** Where in its validity the request arrives, 0..1. */
  at: number;
  range: string | undefined;
}

const presignCaseArb: fc.Arbitrary<PresignCase> = fc.record({
  method: methodArb,
  bucket: bucketArb,
  key: keyArb,
  query: queryArb,
  region: regionArb,
  date: dateArb,
  expires: fc.integer({ min: 10, max: MAX_PRESIGNED_SECONDS }),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  range: fc.option(fc.constantFrom("bytes=0-9", "bytes=5-", "bytes=-1"), { nil: undefined }),
});

/** Presigns with the SDK signer (as the AWS SDK presigner does: payload UNSIGNED, x-amz-* hoisted to the query). */
async function presignCase(c: PresignCase, options: { secretKey?: string } = {}): Promise<{ method: string; target: string; headers: Record<string, string> }> {
  const path = awsPath(c.bucket, c.key);
  const headers: Record<string, string> = { host: HOST, ...(c.range ? { range: c.range } : {}) };
  const out = await signer(options.secretKey ?? SECRET_KEY).presign(
    { method: c.method, protocol: "http:", hostname: HOST, path, query: Object.fromEntries(c.query), headers: { ...headers, "x-amz-content-sha256": UNSIGNED_PAYLOAD } },
    { signingDate: c.date, signingRegion: c.region, expiresIn: c.expires, unsignableHeaders: new Set(["x-amz-content-sha256"]), unhoistableHeaders: new Set(["x-amz-content-sha256"]) },
  );
  const query = Object.entries(out.query ?? {}).map(([n, v]) => [n, String(v)] as [string, string]);
  return { method: c.method, target: `${path}?${queryString(query)}`, headers };
}

/** A moment inside the validity window: from 15 minutes before X-Amz-Date (minus a margin) to its expiry (minus a margin). */
const arrival = (c: PresignCase) => new Date(c.date.getTime() - MAX_SKEW_MS + 2000 + Math.floor(c.at * (MAX_SKEW_MS - 4000 + (c.expires - 2) * 1000)));

describe("authenticate: presigned URLs signed by @smithy/signature-v4 (properties)", () => {
  it("verifies any presigned request while it is valid", async () => {
    await fc.assert(
      fc.asyncProperty(presignCaseArb.map((c) => ({ ...c, query: [...new Map(c.query)] })), async (c) => {
        const raw = await presignCase(c);
        const request = toSigned(raw);
        const longDate = formatAmzDate(c.date);
        const ctx = await authenticate(request, CREDENTIALS, arrival(c));
        expect(ctx).toEqual({
          accessKey: ACCESS_KEY,
          region: c.region,
          longDate,
          scope: `${longDate.slice(0, 8)}/${c.region}/s3/aws4_request`,
          signature: request.query.find(([n]) => n === "X-Amz-Signature")![1],
          signingKey: signingKeyOf(SECRET_KEY, longDate.slice(0, 8), c.region),
          presigned: true,
        });
      }),
      { numRuns: 150 },
    );
  });

  it("refuses (AccessDenied, Request has expired) any presigned request after its expiry", async () => {
    await fc.assert(
      fc.asyncProperty(presignCaseArb, fc.integer({ min: 1, max: 365 * 24 * 3600 * 1000 }), async (c, lateMs) => {
        const request = toSigned(await presignCase({ ...c, query: [...new Map(c.query)] }));
        const expiry = c.date.getTime() + c.expires * 1000;
        const now = new Date(expiry + lateMs);
        const err = await rejection(authenticate(request, CREDENTIALS, now));
        expect(err.code).toBe("AccessDenied");
        expect(err.message).toBe("Request has expired");
        expect(err.extra).toEqual({ "X-Amz-Expires": String(c.expires), Expires: new Date(expiry).toISOString(), ServerTime: now.toISOString() });
        // ...and the last millisecond of its validity is still fine.
        await expect(authenticate(request, CREDENTIALS, new Date(expiry))).resolves.toMatchObject({ presigned: true });
      }),
      { numRuns: 40 },
    );
  });

  it("refuses (AccessDenied) any presigned request more than 15 minutes before its X-Amz-Date", async () => {
    await fc.assert(
      fc.asyncProperty(presignCaseArb, fc.integer({ min: 1, max: 365 * 24 * 3600 * 1000 }), async (c, earlyMs) => {
        const request = toSigned(await presignCase({ ...c, query: [...new Map(c.query)] }));
        const err = await rejection(authenticate(request, CREDENTIALS, new Date(c.date.getTime() - MAX_SKEW_MS - earlyMs)));
        expect(err.code).toBe("AccessDenied");
        expect(err.message).toBe("Request is not valid yet: X-Amz-Date is more than 15 minutes in the future");
      }),
      { numRuns: 40 },
    );
  });

  const mutations = ["path", "query value", "added query", "expires", "method", "host", "range", "date", "region", "secret", "signature"] as const;

  it("refuses (SignatureDoesNotMatch) any presigned request with a signed element changed", async () => {
    await fc.assert(
      fc.asyncProperty(presignCaseArb, fc.constantFrom(...mutations), async (input, mutation) => {
        const c = { ...input, query: [...new Map(input.query)] };
        const raw = await presignCase(c, mutation === "secret" ? { secretKey: `${SECRET_KEY}x` } : {});
        const request = toSigned(raw);
        const setParam = (name: string, value: string): SignedRequest => ({ ...request, query: request.query.map(([n, v]) => [n, n === name ? value : v] as [string, string]) });
        let changed: SignedRequest;
        switch (mutation) {
          case "path":
            changed = { ...request, rawPath: `${request.rawPath}x` };
            break;
          case "query value":
            changed = c.query.length ? setParam(c.query[0]![0], `${c.query[0]![1]}x`) : { ...request, query: [["x", "1"], ...request.query] };
            break;
          case "added query":
            changed = { ...request, query: [...request.query, ["response-content-type", "text/html"]] };
            break;
          case "expires":
            changed = setParam("X-Amz-Expires", String(c.expires === MAX_PRESIGNED_SECONDS ? c.expires - 1 : c.expires + 1));
            break;
          case "method":
            changed = { ...request, method: c.method === "GET" ? "PUT" : "GET" };
            break;
          case "host":
            changed = withHeaders(request, { host: "localhost:9000" });
            break;
          case "range":
            changed = withHeaders(request, { range: c.range ? `${c.range}0` : undefined });
            // Unsigned headers do not matter: only a signed range can be tampered with.
            fc.pre(c.range !== undefined);
            break;
          case "date":
            changed = setParam("X-Amz-Date", otherDateSameDay(formatAmzDate(c.date)));
            break;
          case "region": {
            const credential = request.query.find(([n]) => n === "X-Amz-Credential")![1];
            changed = setParam("X-Amz-Credential", credential.replace(`/${c.region}/`, `/${c.region === "us-east-1" ? "eu-west-1" : "us-east-1"}/`));
            break;
          }
          case "secret":
            changed = request;
            break;
          case "signature": {
            const sig = request.query.find(([n]) => n === "X-Amz-Signature")![1];
            changed = setParam("X-Amz-Signature", `${sig.slice(0, 63)}${sig[63] === "0" ? "1" : "0"}`);
            break;
          }
        }
        // Well inside the window, so that a changed date or expiry still is.
        const now = new Date(c.date.getTime() + Math.floor(c.at * (c.expires - 5) * 1000));
        const err = await rejection(authenticate(changed, CREDENTIALS, now));
        expect(err.code).toBe("SignatureDoesNotMatch");
      }),
      { numRuns: 200 },
    );
  });
});

describe("authenticate: presigned edge cases", () => {
  const presigned = async (options: { expiresIn?: number; extraQuery?: Record<string, string> } = {}) =>
    toSigned({ method: "GET", target: await presignTarget("GET", "/bkt/key", HOST, { date: NOW, ...options }), headers: { host: HOST } });
  const replaceParam = (request: SignedRequest, name: string, value: string | undefined): SignedRequest => ({
    ...request,
    query: value === undefined ? request.query.filter(([n]) => n !== name) : request.query.map(([n, v]) => [n, n === name ? value : v] as [string, string]),
  });

  it("verifies presignTarget URLs from the test client, with extra query parameters", async () => {
    await expect(authenticate(await presigned(), CREDENTIALS, NOW)).resolves.toMatchObject({ presigned: true, region: "us-east-1" });
    await expect(authenticate(await presigned({ extraQuery: { "response-content-disposition": 'attachment; filename="a b.txt"', "x-id": "GetObject" } }), CREDENTIALS, NOW)).resolves.toMatchObject({
      presigned: true,
    });
  });

  it("refuses a presigned request without a header its URL signed (SignatureDoesNotMatch naming the header)", async () => {
    const c: PresignCase = { method: "GET", bucket: "bkt", key: "key", query: [], region: "us-east-1", date: NOW, expires: 600, at: 0, range: "bytes=0-9" };
    const request = toSigned(await presignCase(c));
    expect(request.query.find(([n]) => n === "X-Amz-SignedHeaders")![1]).toBe("host;range");
    await expect(authenticate(request, CREDENTIALS, NOW)).resolves.toMatchObject({ presigned: true });
    const err = await rejection(authenticate(withHeaders(request, { range: undefined }), CREDENTIALS, NOW));
    expect(err.code).toBe("SignatureDoesNotMatch");
    expect(err.message).toBe('the signed header "range" is missing from the request');
  });

  it("ignores an unsigned x-amz-content-sha256 header on a presigned request (the payload is never signed)", async () => {
    const request = await presigned();
    await expect(authenticate(withHeaders(request, { "x-amz-content-sha256": sha256Hex("body") }), CREDENTIALS, NOW)).resolves.toMatchObject({ presigned: true });
  });

  it("accepts an expiry of exactly a week and refuses 0, more than a week, and non-numbers (AuthorizationQueryParametersError)", async () => {
    await expect(authenticate(await presigned({ expiresIn: MAX_PRESIGNED_SECONDS }), CREDENTIALS, NOW)).resolves.toMatchObject({ presigned: true });
    const request = await presigned();
    for (const expires of ["0", String(MAX_PRESIGNED_SECONDS + 1), "abc", "", "-5", "1.5", "99999999"]) {
      const err = await rejection(authenticate(replaceParam(request, "X-Amz-Expires", expires), CREDENTIALS, NOW));
      expect(err.code).toBe("AuthorizationQueryParametersError");
      expect(err.status).toBe(400);
      expect(err.message).toBe("X-Amz-Expires must be a number of seconds from 1 to 604800 (a week)");
    }
  });

  it("refuses missing or repeated auth parameters (AuthorizationQueryParametersError)", async () => {
    const request = await presigned();
    for (const name of ["X-Amz-Algorithm", "X-Amz-Expires", "X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Signature"]) {
      const missing = await rejection(authenticate(replaceParam(request, name, undefined), CREDENTIALS, NOW));
      expect(missing.code).toBe("AuthorizationQueryParametersError");
      expect(missing.message).toBe(`query-string authentication needs exactly one ${name} parameter (found 0)`);
      const value = request.query.find(([n]) => n === name)![1];
      const twice = await rejection(authenticate({ ...request, query: [...request.query, [name, value]] }, CREDENTIALS, NOW));
      expect(twice.message).toBe(`query-string authentication needs exactly one ${name} parameter (found 2)`);
    }
  });

  it("refuses another algorithm, a malformed credential or date (AuthorizationQueryParametersError)", async () => {
    const request = await presigned();
    const credential = request.query.find(([n]) => n === "X-Amz-Credential")![1];
    const cases: Array<[string, string, string]> = [
      ["X-Amz-Algorithm", "AWS4-HMAC-SHA1", 'X-Amz-Algorithm must be AWS4-HMAC-SHA256, not "AWS4-HMAC-SHA1"'],
      ["X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256", 'X-Amz-Algorithm must be AWS4-HMAC-SHA256, not "AWS4-ECDSA-P256-SHA256"'],
      ["X-Amz-Credential", credential.replace("/s3/", "/sts/"), 'the credential scope names service "sts"; this is an s3 endpoint'],
      ["X-Amz-Credential", credential.split("/").slice(0, 4).join("/"), "the credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request"],
      ["X-Amz-Credential", credential.replace("/20261122/", "/20261123/"), "the credential date 20261123 is not the date of X-Amz-Date 20261122T101500Z"],
      ["X-Amz-Date", "2026-11-22T10:15:00Z", 'X-Amz-Date must look like 20060102T150405Z, not "2026-11-22T10:15:00Z"'],
      ["X-Amz-SignedHeaders", "range", "SignedHeaders must include host"],
      ["X-Amz-SignedHeaders", "Host", "SignedHeaders must be lowercase header names separated by ';'"],
      ["X-Amz-Signature", "abc", "the signature must be 64 lowercase hex digits"],
    ];
    for (const [name, value, message] of cases) {
      const err = await rejection(authenticate(replaceParam(request, name, value), CREDENTIALS, NOW));
      expect([name, value, err.code, err.message]).toEqual([name, value, "AuthorizationQueryParametersError", message]);
    }
  });

  it("refuses an unknown access key in X-Amz-Credential (InvalidAccessKeyId)", async () => {
    const request = await presigned();
    const credential = request.query.find(([n]) => n === "X-Amz-Credential")![1];
    const err = await rejection(authenticate(replaceParam(request, "X-Amz-Credential", credential.replace(ACCESS_KEY, "AKIAOTHER")), CREDENTIALS, NOW));
    expect(err.code).toBe("InvalidAccessKeyId");
  });

  it("verifies URLs minted by presignGet, whatever the key, and they route to that key", async () => {
    await fc.assert(
      fc.asyncProperty(bucketArb, keyArb, regionArb, fc.integer({ min: 1, max: MAX_PRESIGNED_SECONDS }), async (bucket, key, region, expires) => {
        const url = await presignGet({ endpoint: new URL(`http://${HOST}`), bucket, key, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, region, expiresInSeconds: expires, now: NOW });
        const target = url.slice(`http://${HOST}`.length);
        expect(target).toMatch(/X-Amz-Credential=[^&]*%2F/);
        const routed = route("GET", target, HOST, []);
        expect(routed).toMatchObject({ operation: "GetObject", bucket, key });
        const ctx = await authenticate({ method: "GET", rawPath: routed.rawPath, query: routed.query, header: (n) => (n === "host" ? HOST : undefined) }, CREDENTIALS, NOW);
        expect(ctx).toMatchObject({ presigned: true, region, accessKey: ACCESS_KEY });
        const late = await rejection(authenticate({ method: "GET", rawPath: routed.rawPath, query: routed.query, header: (n) => (n === "host" ? HOST : undefined) }, CREDENTIALS, new Date(NOW.getTime() + expires * 1000 + 1)));
        expect(late.message).toBe("Request has expired");
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Chunk and trailer signatures of requests signed by the SDK signer
// ---------------------------------------------------------------------------------------------

async function decodeWith(body: Buffer[], chain: ChunkSignatureChain): Promise<{ output: Buffer; decoder: AwsChunkedDecoder }> {
  const decoder = new AwsChunkedDecoder({ signed: true, verifyChunk: chain.verifyChunk });
  const out: Buffer[] = [];
  await pipeline(Readable.from(body), decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const piece of source) out.push(piece);
  });
  return { output: Buffer.concat(out), decoder };
}

describe("ChunkSignatureChain with aws-chunked bodies signed by @smithy/signature-v4", () => {
  it("verifies every chunk of any payload, any chunk size, any region and date", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 1, max: 2048 }), regionArb, dateArb, async (bytes, chunkBytes, region, date) => {
        const payload = Buffer.from(bytes);
        const raw = await signedChunkedPut("/bkt/key", HOST, payload, {}, { chunkBytes, region, date, contentEncoding: true });
        const auth = await authenticate(toSigned(raw), CREDENTIALS, date);
        const { output } = await decodeWith(raw.body as Buffer[], new ChunkSignatureChain(auth));
        expect(output.equals(payload)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("refuses a body whose chunk signature was changed, whichever chunk it is", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.integer({ min: 100, max: 1000 }), fc.nat(), async (bytes, chunkBytes, pick) => {
        const payload = Buffer.from(bytes);
        const chunks = Math.ceil(payload.length / chunkBytes) + 1;
        const target = pick % chunks;
        const raw = await signedChunkedPut("/bkt/key", HOST, payload, {}, { chunkBytes, date: NOW, chunkSignature: (i, s) => (i === target ? `${s.slice(0, 63)}${s[63] === "a" ? "b" : "a"}` : s) });
        const auth = await authenticate(toSigned(raw), CREDENTIALS, NOW);
        const error = await decodeWith(raw.body as Buffer[], new ChunkSignatureChain(auth)).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(ChunkedEncodingError);
        expect((error as ChunkedEncodingError).code).toBe("SignatureDoesNotMatch");
      }),
      { numRuns: 40 },
    );
  });

  it("refuses a chunk signed for another request (a chain from another seed)", async () => {
    const payload = Buffer.alloc(3000, 7);
    const one = await signedChunkedPut("/bkt/one", HOST, payload, {}, { chunkBytes: 1000, date: NOW });
    const two = await signedChunkedPut("/bkt/two", HOST, payload, {}, { chunkBytes: 1000, date: NOW });
    const auth = await authenticate(toSigned(two), CREDENTIALS, NOW);
    await expect(decodeWith(one.body as Buffer[], new ChunkSignatureChain(auth))).rejects.toMatchObject({ code: "SignatureDoesNotMatch" });
  });

  it("verifies the trailer signature after the last chunk", async () => {
    const payload = Buffer.from("hello trailer");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(0x12345678);
    const raw = await signedChunkedPut("/bkt/key", HOST, payload, { "x-amz-sdk-checksum-algorithm": "CRC32" }, { chunkBytes: 5, date: NOW, trailer: ["x-amz-checksum-crc32", crc.toString("base64")] });
    const auth = await authenticate(toSigned(raw), CREDENTIALS, NOW);
    const chain = new ChunkSignatureChain(auth);
    const { output, decoder } = await decodeWith(raw.body as Buffer[], chain);
    expect(output.toString()).toBe("hello trailer");
    expect(chain.verifyTrailer(decoder.trailers)).toBe(true);
    // A changed trailer value, a changed or missing signature, all fail.
    const trailers = new Map(decoder.trailers);
    expect(chain.verifyTrailer(new Map([...trailers, ["x-amz-checksum-crc32", "AAAAAA=="]]))).toBe(false);
    const signature = trailers.get("x-amz-trailer-signature")!;
    expect(chain.verifyTrailer(new Map([...trailers, ["x-amz-trailer-signature", `${signature.slice(0, 63)}${signature[63] === "0" ? "1" : "0"}`]]))).toBe(false);
    expect(chain.verifyTrailer(new Map([...trailers].filter(([n]) => n !== "x-amz-trailer-signature")))).toBe(false);
    expect(chain.verifyTrailer(new Map([...trailers, ["x-amz-extra", "1"]]))).toBe(false);
  });

  it("refuses a trailer signature followed by extra characters", async () => {
    const raw = await signedChunkedPut("/bkt/key", HOST, Buffer.from("x"), {}, { date: NOW, trailer: ["x-amz-checksum-crc32", "AAAAAA=="] });
    const chain = new ChunkSignatureChain(await authenticate(toSigned(raw), CREDENTIALS, NOW));
    const { decoder } = await decodeWith(raw.body as Buffer[], chain);
    const signature = decoder.trailers.get("x-amz-trailer-signature")!;
    expect(chain.verifyTrailer(new Map([...decoder.trailers, ["x-amz-trailer-signature", `${signature}zz`]]))).toBe(false);
  });

  it("refuses a trailer signed before the last chunk was verified (the chain must be complete)", async () => {
    const raw = await signedChunkedPut("/bkt/key", HOST, Buffer.from("abc"), {}, { date: NOW, trailer: ["x-amz-checksum-crc32", "AAAAAA=="] });
    const auth = await authenticate(toSigned(raw), CREDENTIALS, NOW);
    const { decoder } = await decodeWith(raw.body as Buffer[], new ChunkSignatureChain(auth));
    // A fresh chain is still at the seed signature: the same trailer does not verify.
    expect(new ChunkSignatureChain(auth).verifyTrailer(decoder.trailers)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Dates and URI encoding
// ---------------------------------------------------------------------------------------------

describe("parseAmzDate and formatAmzDate", () => {
  it("round-trip any whole-second date from 1970 to 9999", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), (d) => {
        const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
        const text = formatAmzDate(whole);
        expect(text).toMatch(/^\d{8}T\d{6}Z$/);
        expect(parseAmzDate(text)?.getTime()).toBe(whole.getTime());
      }),
      { numRuns: 500 },
    );
  });

  it("formats like the AWS examples and drops milliseconds", () => {
    expect(formatAmzDate(new Date("2013-05-24T00:00:00.999Z"))).toBe("20130524T000000Z");
    expect(parseAmzDate("20130524T000000Z")).toEqual(new Date("2013-05-24T00:00:00Z"));
  });

  it("refuses anything that is not exactly a valid yyyymmddThhmmssZ", () => {
    for (const text of ["", "20130524T000000", "20130524 000000Z", "2013-05-24T00:00:00Z", "20130524T000000z", "20130230T000000Z", "20131301T000000Z", "20130524T240000Z", "20130524T006000Z", "20130524T000060Z", " 20130524T000000Z", "20130524T000000Z ", "201305240T00000Z"]) {
      expect([text, parseAmzDate(text)]).toEqual([text, undefined]);
    }
  });
});

describe("awsUriEncode", () => {
  it("keeps unreserved characters and '/', percent-encodes the rest as uppercase UTF-8", () => {
    expect(awsUriEncode("AZaz09-._~/")).toBe("AZaz09-._~/");
    expect(awsUriEncode("a b+c!'()*$&,;=:@?#%")).toBe("a%20b%2Bc%21%27%28%29%2A%24%26%2C%3B%3D%3A%40%3F%23%25");
    expect(awsUriEncode("é€😀")).toBe("%C3%A9%E2%82%AC%F0%9F%98%80");
  });

  it("produces only unreserved characters, '/' and %XX, and decodes back to its input (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (text) => {
        const encoded = awsUriEncode(text);
        expect(encoded).toMatch(/^(?:[A-Za-z0-9\-._~/]|%[0-9A-F]{2})*$/);
        expect(decodeURIComponent(encoded)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});
