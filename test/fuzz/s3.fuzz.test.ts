import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3_ERROR_CODES } from "../../src/s3/errors.js";
import { startS3, type S3TestServer } from "../s3/harness.js";
import { bodyOf, rawSend, requestHead } from "../s3/inspect.js";
import { signedChunkedPut, signRequest, unsignedTrailerBody, type RawRequest } from "../s3/signer.js";
import { fileBudgetSeconds, fuzz, fuzzTimeoutMs } from "./support/budget.js";
import { errorCollectingLogger } from "../logging/collectingLogger.js";
import { exchange, type Exchanged } from "./support/exchange.js";
import { applyMutations, mutations, type Mutations } from "./support/mutate.js";
import { expectNoPartialWrites } from "./support/storeOracle.js";

/**
 * The S3 endpoint under hostile input, over raw sockets against the real server and a real store in
 * a temp folder: request lines, headers and query strings; XML request documents; aws-chunked
 * framing. Inputs are grammar-shaped (most are validly signed, so they reach the parsers behind
 * authentication) and then byte-mutated. Oracles: never a 5xx but 501 NotImplemented, never a hang,
 * never an error log; every error answer is an XML Error document with a code this server knows;
 * and after each fuzzer, no partial object, temp file or stray file in the store.
 */

const FUZZERS = 3;
const seconds = fileBudgetSeconds() / FUZZERS;
let s3: S3TestServer;
const { log, errors } = errorCollectingLogger();
/** Multipart uploads opened for the XML fuzzer's CompleteMultipartUpload documents. */
const uploadIds: string[] = [];

beforeAll(async () => {
  s3 = await startS3({ buckets: ["bkt", "other"], minPartBytes: 1, overrides: { log } });
  for (const key of ["a", "dir/b", "x.txt"]) {
    const body = Buffer.from(`content of ${key}\n`);
    const reply = await rawSend(s3.port, await sign({ method: "PUT", target: `/bkt/${key}`, headers: { "content-length": String(body.length) }, body }));
    expect(reply.status).toBe(200);
  }
  for (let i = 0; i < 3; i++) {
    const created = await rawSend(s3.port, await sign({ method: "POST", target: `/bkt/upload${i}?uploads`, headers: {} }));
    uploadIds.push(/<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!);
    const part = Buffer.from(`part of upload ${i}`);
    const uploaded = await rawSend(s3.port, await sign({ method: "PUT", target: `/bkt/upload${i}?partNumber=1&uploadId=${uploadIds[i]}`, headers: { "content-length": String(part.length) }, body: part }));
    expect(uploaded.status).toBe(200);
  }
});
afterAll(async () => {
  await s3?.close();
});

/** Signs with the test key; a target the signer cannot parse (bad percent-encoding) goes out with a made-up signature. */
async function sign(request: RawRequest, payloadHash?: string): Promise<RawRequest> {
  const headers = { connection: "close", ...request.headers };
  try {
    return await signRequest({ ...request, headers }, s3.host, payloadHash ? { payloadHash } : {});
  } catch {
    return {
      ...request,
      headers: {
        host: s3.host,
        ...headers,
        "x-amz-date": new Date().toISOString().replace(/[-:]|\.\d{3}/g, ""),
        "x-amz-content-sha256": payloadHash ?? "UNSIGNED-PAYLOAD",
        authorization: `AWS4-HMAC-SHA256 Credential=AKIAAPPSNAPSHOTSTEST/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${"0".repeat(64)}`,
      },
    };
  }
}

const serialize = (request: RawRequest) => Buffer.concat([Buffer.from(requestHead(request), "utf8"), bodyOf(request)]);

/** The oracles every answer must pass. */
function checkAnswer(exchanged: Exchanged, head: boolean): void {
  const fivexx = exchanged.statuses.filter((status) => status >= 500 && status !== 501);
  expect(fivexx, `a 5xx answer: ${exchanged.response?.text.slice(0, 300)}`).toEqual([]);
  // An error is logged when the request fails, which may be just after the answer: then the next input reports it.
  expect(errors.splice(0), "the server logged an error").toEqual([]);
  const response = exchanged.response;
  if (!response || response.status < 300 || head || response.body.length === 0) return;
  // Node's own parser refuses some requests (400/431 without a body, above); every answer of ours is an S3 error document.
  expect(response.text, "an error answer that is not an S3 error document").toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Error><Code>[A-Za-z]+<\/Code>.*<\/Error>$/s);
  expect(S3_ERROR_CODES.has(response.code ?? ""), `unknown error code ${response.code}`).toBe(true);
  if (response.status === 501) expect(response.code).toBe("NotImplemented");
}

/** Sends a request, byte-mutated if asked; `complete` false when its framing may promise more bytes than it has. */
async function send(request: RawRequest, options: { mutation?: Mutations; complete?: boolean } = {}): Promise<Exchanged> {
  const bytes = serialize(request);
  const head = request.method === "HEAD";
  const exchanged = await exchange(s3.port, options.mutation ? applyMutations(bytes, options.mutation) : bytes, { complete: options.complete ?? !options.mutation, head });
  checkAnswer(exchanged, head);
  return exchanged;
}

// --- request lines, headers and query strings ----------------------------------------------------

const percentJunk = fc.constantFrom("%", "%zz", "%00", "%2F", "%2e%2e", "%ff", "%c3%28", "%E2%82%AC", "+", "%20", "%25");
const segment = fc.oneof(
  fc.constantFrom("a", "b", "dir", "x.txt", "upload0", "..", ".", ".app-snapshots-folder", ".app-snapshots", "lost+found", "x".repeat(256), "y".repeat(1100)),
  percentJunk,
  fc.string({ unit: "binary", maxLength: 8 }).map(encodeURIComponent),
  fc.string({ maxLength: 8 }),
);
const bucketName = fc.constantFrom("bkt", "other", "missing-bucket", "ab", "Bad_Name", "..", ".app-snapshots", "%2e%2e", "192.168.0.1", "b".repeat(64));
const path = fc.oneof(
  fc.constant("/"),
  bucketName.map((b) => `/${b}`),
  fc.tuple(bucketName, fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([b, segments, slash]) => `/${b}/${segments.join("/")}${slash ? "/" : ""}`),
  fc.string({ maxLength: 30 }).map((s) => `/${s}`),
  fc.constantFrom("*", "http://127.0.0.1/bkt/a", "//bkt//a", "/bkt/a#frag", "/bkt/" + "k".repeat(20_000)),
);
const SUBRESOURCES = [
  "delete", "uploads", "uploadId", "partNumber", "list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "marker", "encoding-type",
  "fetch-owner", "location", "versioning", "versions", "versionId", "acl", "tagging", "policy", "cors", "x-id", "max-parts", "part-number-marker", "max-uploads",
  "key-marker", "upload-id-marker", "response-content-type", "response-content-disposition", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Expires", "X-Amz-Date",
];
const queryValue = fc.oneof(
  fc.constantFrom("", "1", "0", "-1", "2", "1000", "1001", "10001", "99999999999999999999", "1e3", "0x10", " 1", "true", "url", "null", "a/b", "/", "GetObject", "AWS4-HMAC-SHA256"),
  fc.constantFrom(...["0123456789abcdef0123456789abcdef", "0".repeat(32), "../../etc"]),
  percentJunk,
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...SUBRESOURCES), fc.string({ maxLength: 6 }).map(encodeURIComponent)), fc.option(queryValue)), { maxLength: 5 }).map((pairs) =>
  pairs.map(([name, value]) => (value === null ? name : `${name}=${value}`)).join("&"),
);
const HEADERS = [
  "range", "content-md5", "content-type", "content-encoding", "content-language", "cache-control", "expires", "x-amz-copy-source", "x-amz-copy-source-range",
  "x-amz-copy-source-if-match", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "x-amz-meta-a", "x-amz-meta-", "x-amz-tagging",
  "x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-crc64nvme", "x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm", "x-amz-checksum-type",
  "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-metadata-directive", "x-amz-storage-class", "x-amz-acl", "x-amz-server-side-encryption", "expect", "transfer-encoding",
];
const headerValue = fc.oneof(
  fc.constantFrom("", " ", "*", "\"x\"", "bytes=0-0", "bytes=-1", "bytes=5-1", "bytes=0-", "bytes=99999999999999999999-", "bytes=0-1,2-3", "bytes=", "100-continue", "chunked",
    "aws-chunked", "aws-chunked,gzip", "/bkt/a", "bkt/a", "/bkt/a?versionId=null", "/missing-bucket/a", "%zz", "CRC32", "crc32", "SHA256", "COMPOSITE", "FULL_OBJECT", "REPLACE",
    "1B2M2Y8AsgTpgAmY7PhCfg==", "AAAAAA==", "x-amz-checksum-crc32", "Thu, 01 Jan 1970 00:00:00 GMT", "-1", "99999999999999999999", "a=b&c=d", "\u00e9", "x".repeat(9000)),
  fc.string({ unit: "binary-ascii", maxLength: 16 }).map((s) => s.replace(/[\r\n]/g, "")),
);
const headers = fc.array(fc.tuple(fc.constantFrom(...HEADERS), headerValue), { maxLength: 4 }).map((pairs) => Object.fromEntries(pairs));
const method = fc.oneof(fc.constantFrom("GET", "PUT", "POST", "DELETE", "HEAD"), fc.constantFrom("OPTIONS", "PATCH", "get", "TRACE", "CONNECT", "PROPFIND"));
const body = fc.option(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 64 }).map((s) => Buffer.from(s))), { nil: undefined });

const requestShape = fc.record({
  method,
  path,
  query,
  headers,
  body,
  payload: fc.constantFrom("hash", "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "junk"),
  mutation: fc.option(mutations, { nil: undefined }),
});

// --- XML request documents ---------------------------------------------------------------------------

const xmlText = fc.oneof(
  fc.constantFrom("a", "dir/b", "x.txt", "1", "00001", "true", "false", "null", " a ", "", "&amp;", "&lt;x&gt;", "&#65;", "&#x1F600;", "&#0;", "&#xD800;", "&bogus;", "&", "]]>", "<![CDATA[a]]>", "<!-- c -->"),
  fc.constantFrom(...['"etag"', '"0123456789abcdef0123456789abcdef"', "CRC32", "AAAAAA==", "us-east-1", "EU", "x".repeat(2000)]),
  fc.string({ maxLength: 12 }).map((s) => s.replace(/[<&]/g, "")),
);
const ELEMENTS = ["Object", "Key", "VersionId", "ETag", "Quiet", "Part", "PartNumber", "ChecksumCRC32", "ChecksumSHA256", "LocationConstraint", "Bucket", "Size", "LastModifiedTime", "x"];
const xmlElement: fc.Arbitrary<string> = fc.letrec<{ element: string }>((tie) => ({
  element: fc.oneof(
    { depthSize: "small" },
    fc.tuple(fc.constantFrom(...ELEMENTS), xmlText).map(([name, text]) => `<${name}>${text}</${name}>`),
    fc.tuple(fc.constantFrom(...ELEMENTS), fc.array(tie("element"), { maxLength: 4 })).map(([name, children]) => `<${name}>${children.join("")}</${name}>`),
    fc.constantFrom("<?x?>", "<?xml version=\"1.0\"?>", "<!-- c -->", "<![CDATA[<a>]]>", "<a/>", "<a x=\"/>\">", "<a x='>'></a>", "<!DOCTYPE x>", "<!ENTITY e \"x\">", "</x>", "<", ">", "<x:Key xmlns:x=\"u\">k</x:Key>"),
    fc.tuple(fc.constantFrom("<a>", "<a x=\">\">", "<a x=\"/>\">"), fc.constantFrom(10, 100, 1000, 10_000)).map(([open, depth]) => `${open.repeat(depth)}${"</a>".repeat(depth)}`),
  ),
})).element;
const ROOTS = ["Delete", "CompleteMultipartUpload", "CreateBucketConfiguration", "Other"];
const xmlDocument = fc
  .tuple(fc.boolean(), fc.option(fc.constantFrom("\uFEFF", " ", "\n", "<?foo?>", "<!-- c -->", "<!DOCTYPE Delete [<!ENTITY a \"b\">]>")), fc.constantFrom(...ROOTS), fc.boolean(), fc.array(xmlElement, { maxLength: 6 }), fc.option(fc.constantFrom("<Delete/>", "<?x?>", "junk", "\0")))
  .map(([declaration, prefix, root, namespace, children, suffix]) =>
    `${prefix ?? ""}${declaration ? '<?xml version="1.0" encoding="UTF-8"?>' : ""}<${root}${namespace ? ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' : ""}>${children.join("")}</${root}>${suffix ?? ""}`,
  );
const xmlTarget = fc.oneof(
  fc.constant({ method: "POST", target: "/bkt?delete" }),
  fc.integer({ min: 0, max: 2 }).map((i) => ({ method: "POST", target: `/bkt/upload${i}?uploadId=${i}` })),
  fc.constantFrom("new-bucket-1", "new-bucket-2", "bkt").map((b) => ({ method: "PUT", target: `/${b}` })),
);

// --- aws-chunked framing -----------------------------------------------------------------------------

const base64Crc32 = (data: Buffer) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data));
  return bytes.toString("base64");
};
const chunkedShape = fc.record({
  key: fc.constantFrom("chunked/a", "chunked/b", "a"),
  payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  chunkBytes: fc.integer({ min: 1, max: 128 }),
  signed: fc.boolean(),
  trailer: fc.boolean(),
  contentEncoding: fc.boolean(),
  mutation: fc.option(mutations, { nil: undefined }),
  /** A mutated body still declares its new length (else the original: too short or too long). */
  fixLength: fc.boolean(),
});

describe("S3 endpoint under fuzzing", () => {
  it("request lines, headers and query strings: no 5xx, hang, error log or partial write", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    await fuzz("s3 requests", seconds, requestShape, async (shape) => {
      const target = `${shape.path}${shape.query ? `?${shape.query}` : ""}`;
      const withLength = shape.body ? { "content-length": String(shape.body.length), ...shape.headers } : shape.headers;
      const payloadHash = shape.payload === "hash" ? undefined : shape.payload === "junk" ? "z".repeat(64) : shape.payload;
      const request = await sign({ method: shape.method, target, headers: withLength, ...(shape.body ? { body: shape.body } : {}) }, payloadHash);
      await send(request, { mutation: shape.mutation });
    });
    await expectNoPartialWrites(s3.root);
  });

  it("XML request documents: every one not understood is MalformedXML (or another 4xx), never a 500", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    await fuzz("s3 xml bodies", seconds, fc.record({ target: xmlTarget, document: xmlDocument, mutation: fc.option(mutations, { nil: undefined }) }), async ({ target, document, mutation }) => {
      const resolved = target.target.replace(/uploadId=(\d)$/, (_m, i: string) => `uploadId=${uploadIds[Number(i)]}`);
      const raw = Buffer.from(document, "utf8");
      const xml = mutation ? applyMutations(raw, mutation) : raw;
      const request = await sign({ method: target.method, target: resolved, headers: { "content-length": String(xml.length), "content-md5": createHash("md5").update(xml).digest("base64") }, body: xml });
      const { response } = await send(request);
      expect(response, "no answer to a complete request").toBeDefined();
    });
    await expectNoPartialWrites(s3.root);
  });

  it("aws-chunked framing, signed and unsigned with trailers: no 5xx, hang or partial object; an intact upload stores its payload", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    let intactUploads = 0;
    await fuzz("s3 aws-chunked", seconds, chunkedShape, async (input) => {
      // An intact upload gets a key of its own. A mutated upload may still be running on the server after its
      // client got an answer: bytes a mutation pushed past Content-Length are a second request, which Node's
      // parser answers with a 400 and a close while the first, whose body arrived whole, is still being stored.
      // It then replaced the intact upload's object before the GET (seed -2067064902).
      const shape = input.mutation ? input : { ...input, key: `intact/${intactUploads++}/${input.key}` };
      const trailer: [string, string] = ["x-amz-checksum-crc32", base64Crc32(shape.payload)];
      let request: RawRequest;
      if (shape.signed) {
        request = await signedChunkedPut(`/bkt/${shape.key}`, s3.host, shape.payload, { connection: "close" }, { chunkBytes: shape.chunkBytes, contentEncoding: shape.contentEncoding, ...(shape.trailer ? { trailer } : {}) });
      } else {
        const framed = unsignedTrailerBody(shape.payload, trailer, shape.chunkBytes);
        const headers = {
          "content-length": String(framed.length),
          "x-amz-decoded-content-length": String(shape.payload.length),
          "x-amz-trailer": trailer[0],
          ...(shape.contentEncoding ? { "content-encoding": "aws-chunked" } : {}),
        };
        request = await sign({ method: "PUT", target: `/bkt/${shape.key}`, headers, body: framed }, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
      }
      if (shape.mutation) {
        const mutated = applyMutations(bodyOf(request), shape.mutation);
        request = { ...request, body: mutated, headers: shape.fixLength ? { ...request.headers, "content-length": String(mutated.length) } : request.headers };
      }
      const { response } = await send(request, { complete: !shape.mutation || shape.fixLength });
      if (!shape.mutation) {
        expect(response?.status, response?.text).toBe(200);
        const stored = await rawSend(s3.port, await sign({ method: "GET", target: `/bkt/${shape.key}`, headers: {} }));
        expect(stored.body.equals(shape.payload), "the stored object is not the payload").toBe(true);
        const deleted = await rawSend(s3.port, await sign({ method: "DELETE", target: `/bkt/${shape.key}`, headers: {} }));
        expect(deleted.status).toBe(204);
      }
    });
    await expectNoPartialWrites(s3.root);
  });
});
