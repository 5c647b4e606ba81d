import { createHash } from "node:crypto";
import type http from "node:http";
import { StorageError } from "../storage/errors.js";
import { bucketNameProblem, keyProblem, printable } from "../storage/keys.js";
import { sendObjectBytes } from "../storage/objectResponse.js";
import type { ListedObject, ListResult } from "../storage/listing.js";
import { decideRange } from "../storage/range.js";
import type { ObjectInfo, OpenObject } from "../storage/store.js";
import { S3Error } from "./errors.js";
import { CHECKSUM_ALGORITHMS, incomingBody } from "./payload.js";
import { param, type Operation, type Route } from "./routing.js";
import { checkPartNumber } from "./multipart.js";
import type { S3ServerOptions } from "./server.js";
import type { AuthContext } from "./sigv4.js";
import { escapeXml, listOf, MAX_XML_BYTES, parseXml, S3_NAMESPACE, textOf, xmlDocument, type XmlNode } from "./xml.js";

/** Everything an operation needs: the request, its route and signer, and the server's parts. */
export interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  route: Route;
  auth: AuthContext;
  header: (name: string) => string | undefined;
  options: S3ServerOptions;
  requestId: string;
  now: Date;
}

const OWNER: XmlNode = ["Owner", [["ID", "app-snapshots"], ["DisplayName", "app-snapshots"]]];
/** S3's cap on user metadata (x-amz-meta-* names and values). */
const MAX_USER_METADATA_BYTES = 2048;
const MAX_DELETE_OBJECTS = 1000;

export const OPERATIONS: Record<Operation, (c: RequestContext) => Promise<void>> = {
  ListBuckets: async (c) => {
    const buckets = await c.options.store.listBuckets();
    sendXml(c, 200, "ListAllMyBucketsResult", [
      OWNER,
      ["Buckets", buckets.map((b): XmlNode => ["Bucket", [["Name", b.name], ["CreationDate", b.created.toISOString()]]])],
    ]);
  },

  HeadBucket: async (c) => {
    await requireBucket(c);
    c.res.setHeader("x-amz-bucket-region", c.options.region || "us-east-1");
    c.res.end();
  },

  GetBucketLocation: async (c) => {
    await requireBucket(c);
    // Empty means us-east-1 to every client.
    sendRaw(c, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="${S3_NAMESPACE}">${escapeXml(c.options.region)}</LocationConstraint>`);
  },

  GetBucketVersioning: async (c) => {
    await requireBucket(c);
    sendXml(c, 200, "VersioningConfiguration", []);
  },

  CreateBucket: async (c) => {
    refuseBucketChanges(c);
    await readSmallBody(c); // an optional CreateBucketConfiguration; any region is fine
    await c.options.store.createBucket(c.route.bucket);
    c.res.setHeader("location", `/${c.route.bucket}`);
    c.res.end();
  },

  DeleteBucket: async (c) => {
    refuseBucketChanges(c);
    await c.options.store.deleteBucket(c.route.bucket);
    // Unfinished uploads into the bucket go with it.
    for (const { uploadId, record } of await c.options.uploads.list(c.route.bucket)) await c.options.uploads.abort(c.route.bucket, record.key, uploadId);
    c.res.statusCode = 204;
    c.res.end();
  },

  ListObjectsV2: async (c) => {
    const token = param(c.route.query, "continuation-token");
    if (token === "") throw new S3Error("InvalidArgument", "The continuation token provided is incorrect");
    const l = await listRequest(c, "start-after", token);
    sendXml(c, 200, "ListBucketResult", [
      ["Name", c.route.bucket],
      ["Prefix", l.encode(l.prefix)],
      ["Delimiter", l.delimiter === undefined ? undefined : l.encode(l.delimiter)],
      ["MaxKeys", l.maxKeys],
      ["KeyCount", l.page.objects.length + l.page.commonPrefixes.length],
      l.encodingType,
      ["IsTruncated", l.page.isTruncated],
      ["ContinuationToken", token],
      ["NextContinuationToken", l.page.nextContinuationToken],
      ["StartAfter", l.marker === undefined ? undefined : l.encode(l.marker)],
      ...contents(l.page.objects, l.encode, param(c.route.query, "fetch-owner") === "true"),
      ...l.commonPrefixes,
    ]);
  },

  ListObjects: async (c) => {
    const l = await listRequest(c, "marker");
    sendXml(c, 200, "ListBucketResult", [
      ["Name", c.route.bucket],
      ["Prefix", l.encode(l.prefix)],
      ["Marker", l.encode(l.marker ?? "")],
      ["NextMarker", l.page.isTruncated && l.delimiter !== undefined && l.last !== undefined ? l.encode(l.last) : undefined],
      ["MaxKeys", l.maxKeys],
      ["Delimiter", l.delimiter === undefined ? undefined : l.encode(l.delimiter)],
      l.encodingType,
      ["IsTruncated", l.page.isTruncated],
      ...contents(l.page.objects, l.encode, true),
      ...l.commonPrefixes,
    ]);
  },

  ListObjectVersions: async (c) => {
    const l = await listRequest(c, "key-marker");
    const { encode, page, last } = l;
    sendXml(c, 200, "ListVersionsResult", [
      ["Name", c.route.bucket],
      ["Prefix", encode(l.prefix)],
      ["KeyMarker", encode(l.marker ?? "")],
      ["VersionIdMarker", ""],
      ["NextKeyMarker", page.isTruncated && last !== undefined ? encode(last) : undefined],
      ["NextVersionIdMarker", page.isTruncated ? "null" : undefined],
      ["MaxKeys", l.maxKeys],
      ["Delimiter", l.delimiter === undefined ? undefined : encode(l.delimiter)],
      l.encodingType,
      ["IsTruncated", page.isTruncated],
      ...page.objects.map(
        (o): XmlNode => [
          "Version",
          [
            ["Key", encode(o.key)],
            ["VersionId", "null"],
            ["IsLatest", true],
            ["LastModified", o.lastModified.toISOString()],
            ["ETag", o.etag === undefined ? undefined : `"${o.etag}"`],
            ["Size", o.size],
            ["StorageClass", "STANDARD"],
            OWNER,
          ],
        ],
      ),
      ...l.commonPrefixes,
    ]);
  },

  ListMultipartUploads: async (c) => {
    await requireBucket(c);
    const q = c.route.query;
    const encode = encodingType(q);
    const maxUploads = maxKeysOf(q, "max-uploads");
    const prefix = param(q, "prefix") ?? "";
    const keyMarker = param(q, "key-marker") ?? "";
    const uploadIdMarker = param(q, "upload-id-marker") ?? "";
    const all = (await c.options.uploads.list(c.route.bucket)).filter(
      ({ uploadId, record }) => record.key.startsWith(prefix) && (record.key > keyMarker || (record.key === keyMarker && uploadId > uploadIdMarker)),
    );
    const page = all.slice(0, maxUploads);
    const truncated = all.length > page.length;
    const last = page.at(-1);
    sendXml(c, 200, "ListMultipartUploadsResult", [
      ["Bucket", c.route.bucket],
      ["KeyMarker", encode(keyMarker)],
      ["UploadIdMarker", uploadIdMarker],
      ["NextKeyMarker", truncated && last ? encode(last.record.key) : undefined],
      ["NextUploadIdMarker", truncated && last ? last.uploadId : undefined],
      ["Prefix", encode(prefix)],
      ["MaxUploads", maxUploads],
      ["EncodingType", encode === identity ? undefined : "url"],
      ["IsTruncated", truncated],
      ...page.map(
        ({ uploadId, record }): XmlNode => [
          "Upload",
          [
            ["Key", encode(record.key)],
            ["UploadId", uploadId],
            ["Initiator", [["ID", "app-snapshots"], ["DisplayName", "app-snapshots"]]],
            OWNER,
            ["StorageClass", "STANDARD"],
            ["Initiated", record.initiated],
          ],
        ],
      ),
    ]);
  },

  DeleteObjects: async (c) => {
    await requireBucket(c);
    const doc = parseXml(await readSmallBody(c), "Delete");
    const quiet = textOf(doc, "Quiet")?.trim() === "true";
    const objects = listOf(doc, "Object");
    if (objects.length === 0) throw new S3Error("MalformedXML", "the Delete document names no Object");
    if (objects.length > MAX_DELETE_OBJECTS) throw new S3Error("MalformedXML", `at most ${MAX_DELETE_OBJECTS} objects can be deleted per request`);
    const results: XmlNode[] = [];
    for (const object of objects) {
      const key = textOf(object, "Key");
      if (key === undefined) throw new S3Error("MalformedXML", "every Object in a Delete document needs a Key");
      try {
        await c.options.store.delete(c.route.bucket, key);
        if (!quiet) results.push(["Deleted", [["Key", key]]]);
      } catch (err) {
        const error = isAbsent(err) ? undefined : toDeleteError(err);
        if (!error && !quiet) results.push(["Deleted", [["Key", key]]]);
        if (error) results.push(["Error", [["Key", key], ["Code", error.code], ["Message", error.message]]]);
      }
    }
    sendXml(c, 200, "DeleteResult", results);
  },

  HeadObject: async (c) => getObject(c),
  GetObject: async (c) => getObject(c),

  PutObject: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const userMetadata = userMetadataOf(c.req);
    const incoming = incomingBody({ header: c.header, stream: c.req }, c.auth, c.options.store.maxObjectBytes);
    await requireBucket(c);
    continueUpload(c);
    const result = await c.options.store.put(c.route.bucket, c.route.key, incoming.body, {
      ...incoming.options,
      contentType: c.header("content-type") ?? undefined,
      contentEncoding: incoming.contentEncoding,
      userMetadata,
    });
    c.options.metrics.bytesReceived.inc({ server: "s3" }, result.size);
    c.res.setHeader("etag", `"${result.md5}"`);
    setChecksumHeaders(c.res, result.checksums);
    c.res.end();
  },

  CopyObject: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const source = copySource(c.header("x-amz-copy-source")!);
    const directive = (c.header("x-amz-metadata-directive") ?? "COPY").toUpperCase();
    if (directive !== "COPY" && directive !== "REPLACE") throw new S3Error("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE");
    await readSmallBody(c);
    const object = await openObject(c, source.bucket, source.key);
    const replace = directive === "REPLACE";
    if (!replace && source.bucket === c.route.bucket && source.key === c.route.key) {
      await object.close();
      throw new S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
    }
    const result = await c.options.store.put(c.route.bucket, c.route.key, object.stream(), {
      expectedSize: object.info.size,
      contentType: replace ? (c.header("content-type") ?? undefined) : object.info.contentType,
      contentEncoding: replace ? (c.header("content-encoding") ?? undefined) : object.info.contentEncoding,
      userMetadata: replace ? userMetadataOf(c.req) : object.info.userMetadata,
      checksums: object.info.checksums,
    });
    sendXml(c, 200, "CopyObjectResult", [
      ["LastModified", result.lastModified.toISOString()],
      ["ETag", `"${result.md5}"`],
    ]);
  },

  DeleteObject: async (c) => {
    await requireBucket(c);
    await c.options.store.delete(c.route.bucket, c.route.key).catch((err: unknown) => {
      // Deleting what is not there succeeds in S3 (and minio-go insists on 204).
      if (!isAbsent(err)) throw err;
    });
    c.res.statusCode = 204;
    c.res.end();
  },

  CreateMultipartUpload: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const uploadId = await c.options.uploads.create({
      bucket: c.route.bucket,
      key: keyChecked(c),
      contentType: c.header("content-type") ?? undefined,
      contentEncoding: c.header("content-encoding") ?? undefined,
      userMetadata: userMetadataOf(c.req),
      checksumAlgorithm: c.header("x-amz-checksum-algorithm")?.toUpperCase(),
    });
    if (c.header("x-amz-checksum-algorithm")) c.res.setHeader("x-amz-checksum-algorithm", c.header("x-amz-checksum-algorithm")!.toUpperCase());
    sendXml(c, 200, "InitiateMultipartUploadResult", [
      ["Bucket", c.route.bucket],
      ["Key", c.route.key],
      ["UploadId", uploadId],
    ]);
  },

  UploadPart: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const partNumber = Number(param(c.route.query, "partNumber"));
    checkPartNumber(partNumber);
    const incoming = incomingBody({ header: c.header, stream: c.req }, c.auth, c.options.store.maxObjectBytes);
    // Refuse unknown uploads before the body is sent (Expect: 100-continue).
    await c.options.uploads.check(c.route.bucket, c.route.key, uploadId);
    continueUpload(c);
    const result = await c.options.uploads.uploadPart(c.route.bucket, c.route.key, uploadId, partNumber, incoming.body, incoming.options);
    c.options.metrics.bytesReceived.inc({ server: "s3" }, result.size);
    c.res.setHeader("etag", `"${result.md5}"`);
    setChecksumHeaders(c.res, result.checksums);
    c.res.end();
  },

  CompleteMultipartUpload: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const doc = parseXml(await readSmallBody(c), "CompleteMultipartUpload");
    const parts = listOf(doc, "Part").map((part) => {
      const number = textOf(part, "PartNumber")?.trim();
      const etag = textOf(part, "ETag")?.trim();
      if (!number || !/^\d{1,5}$/.test(number) || !etag) throw new S3Error("MalformedXML", "every Part needs a PartNumber (1-10000) and an ETag");
      return { partNumber: Number(number), etag };
    });
    const result = await c.options.uploads.complete(c.route.bucket, c.route.key, uploadId, parts);
    sendXml(c, 200, "CompleteMultipartUploadResult", [
      ["Location", `/${c.route.bucket}/${c.route.key}`],
      ["Bucket", c.route.bucket],
      ["Key", c.route.key],
      ["ETag", `"${result.md5}"`],
    ]);
  },

  AbortMultipartUpload: async (c) => {
    await c.options.uploads.abort(c.route.bucket, c.route.key, param(c.route.query, "uploadId") ?? "");
    c.res.statusCode = 204;
    c.res.end();
  },

  ListParts: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const maxParts = maxKeysOf(c.route.query, "max-parts");
    const marker = Number(param(c.route.query, "part-number-marker") ?? "0");
    if (!Number.isInteger(marker) || marker < 0) throw new S3Error("InvalidArgument", "part-number-marker must be a part number");
    const { parts } = await c.options.uploads.listParts(c.route.bucket, c.route.key, uploadId);
    const after = parts.filter((p) => p.partNumber > marker);
    const page = after.slice(0, maxParts);
    const truncated = after.length > page.length;
    sendXml(c, 200, "ListPartsResult", [
      ["Bucket", c.route.bucket],
      ["Key", c.route.key],
      ["UploadId", uploadId],
      ["Initiator", [["ID", "app-snapshots"], ["DisplayName", "app-snapshots"]]],
      OWNER,
      ["StorageClass", "STANDARD"],
      ["PartNumberMarker", marker],
      ["NextPartNumberMarker", page.at(-1)?.partNumber ?? marker],
      ["MaxParts", maxParts],
      ["IsTruncated", truncated],
      ...page.map(
        (p): XmlNode => [
          "Part",
          [
            ["PartNumber", p.partNumber],
            ["LastModified", p.lastModified.toISOString()],
            ["ETag", `"${p.etag}"`],
            ["Size", p.size],
            ...Object.entries(p.checksums).map(([alg, value]): XmlNode => [`Checksum${alg.toUpperCase()}`, value]),
          ],
        ],
      ),
    ]);
  },
};

async function getObject(c: RequestContext): Promise<void> {
  const object = await openObject(c, c.route.bucket, c.route.key);
  const { info } = object;
  const res = c.res;
  res.setHeader("accept-ranges", "bytes");
  res.setHeader("last-modified", info.lastModified.toUTCString());
  res.setHeader("content-type", param(c.route.query, "response-content-type") ?? info.contentType);
  if (info.contentEncoding) res.setHeader("content-encoding", info.contentEncoding);
  for (const [name, header] of RESPONSE_OVERRIDES) {
    const value = param(c.route.query, name);
    if (value !== undefined) res.setHeader(header, value);
  }
  if (info.md5) res.setHeader("etag", `"${info.md5}"`);
  for (const [name, value] of Object.entries(info.userMetadata)) res.setHeader(`x-amz-meta-${name}`, value);
  const precondition = checkPreconditions(c, info);
  if (precondition) {
    await object.close();
    if (precondition === 304) {
      res.statusCode = 304;
      res.removeHeader("content-type");
      res.end();
      return;
    }
    throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  }
  const range = decideRange(c.header("range"), info.size);
  if (range.kind === "unsatisfiable") {
    await object.close();
    throw new S3Error("InvalidRange", "The requested range is not satisfiable", { ActualObjectSize: String(info.size) });
  }
  const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, info.size - 1];
  if (range.kind === "partial") {
    res.statusCode = 206;
    res.setHeader("content-range", `bytes ${start}-${end}/${info.size}`);
  } else if (c.header("x-amz-checksum-mode")?.toUpperCase() === "ENABLED") {
    // Only a whole-object read gets the checksum: a client validates the bytes it received against it.
    setChecksumHeaders(res, info.checksums);
    if (Object.keys(info.checksums).length > 0) res.setHeader("x-amz-checksum-type", "FULL_OBJECT");
  }
  res.setHeader("content-length", end - start + 1);
  await sendObjectBytes(c.req, res, object, { start, end }, { metrics: c.options.metrics, server: "s3", log: c.options.log });
}

const RESPONSE_OVERRIDES: Array<[string, string]> = [
  ["response-content-language", "content-language"],
  ["response-expires", "expires"],
  ["response-cache-control", "cache-control"],
  ["response-content-disposition", "content-disposition"],
  ["response-content-encoding", "content-encoding"],
];

/** If-Match / If-None-Match / If-(Un)Modified-Since on GET and HEAD: 412, 304, or proceed. */
function checkPreconditions(c: RequestContext, info: ObjectInfo): 304 | 412 | undefined {
  const etag = info.md5 ? `"${info.md5}"` : undefined;
  const matches = (list: string) => list.split(",").some((t) => t.trim() === "*" || t.trim() === etag || t.trim() === info.md5);
  const seconds = Math.floor(info.lastModified.getTime() / 1000) * 1000;
  const ifMatch = c.header("if-match");
  const ifNoneMatch = c.header("if-none-match");
  const ifModifiedSince = Date.parse(c.header("if-modified-since") ?? "");
  const ifUnmodifiedSince = Date.parse(c.header("if-unmodified-since") ?? "");
  if (ifMatch !== undefined && !matches(ifMatch)) return 412;
  if (ifMatch === undefined && !Number.isNaN(ifUnmodifiedSince) && seconds > ifUnmodifiedSince) return 412;
  if (ifNoneMatch !== undefined && matches(ifNoneMatch)) return 304;
  if (ifNoneMatch === undefined && !Number.isNaN(ifModifiedSince) && seconds <= ifModifiedSince) return 304;
  return undefined;
}

async function openObject(c: RequestContext, bucket: string, key: string): Promise<OpenObject> {
  try {
    return await c.options.store.open(bucket, key);
  } catch (err) {
    // A folder, a key the store cannot hold, or a path through a file: none is an object.
    if (err instanceof StorageError && (err.code === "InvalidKey" || err.code === "KeyConflict")) throw new S3Error("NoSuchKey", "The specified key does not exist.");
    if (err instanceof StorageError && err.code === "NoSuchKey") throw new S3Error("NoSuchKey", "The specified key does not exist.");
    throw err;
  }
}

async function requireBucket(c: RequestContext): Promise<void> {
  const problem = bucketNameProblem(c.route.bucket);
  if (problem) throw new S3Error("InvalidBucketName", problem);
  if (!(await c.options.store.bucketExists(c.route.bucket))) throw new S3Error("NoSuchBucket", "The specified bucket does not exist");
}

function refuseBucketChanges(c: RequestContext): void {
  if (!c.options.allowBucketChanges) {
    throw new S3Error("AccessDenied", "creating and deleting buckets is disabled on this server (started with --no-bucket-changes); an admin creates bucket folders");
  }
}

/** Features whose headers we must not silently drop: the client would believe they apply. */
function refuseUnsupportedWriteHeaders(c: RequestContext): void {
  const tagging = c.header("x-amz-tagging");
  // The Velero AWS plugin 1.14.1/1.14.2 always sends the header, usually empty (velero#9931).
  if (tagging !== undefined && tagging.trim() !== "") throw new S3Error("NotImplemented", "object tagging is not supported; remove the BSL's tagging setting");
  const sse = c.header("x-amz-server-side-encryption") ?? c.header("x-amz-server-side-encryption-customer-algorithm");
  if (sse !== undefined) throw new S3Error("NotImplemented", "server-side encryption is not supported; encrypt the volume, or let kopia encrypt (it always does)");
  if (c.header("x-amz-object-lock-mode") !== undefined || c.header("x-amz-object-lock-retain-until-date") !== undefined) {
    throw new S3Error("NotImplemented", "object lock is not supported");
  }
  if (c.header("if-none-match") !== undefined || c.header("if-match") !== undefined) throw new S3Error("NotImplemented", "conditional writes are not supported");
  if (c.header("x-amz-website-redirect-location") !== undefined) throw new S3Error("NotImplemented", "website redirects are not supported");
}

/** `Expect: 100-continue`: the request was checked, now ask for the body. */
function continueUpload(c: RequestContext): void {
  if (c.header("expect")?.toLowerCase() === "100-continue") c.res.writeContinue();
}

/** Multipart keys are checked at Create, not only when the object is assembled. */
function keyChecked(c: RequestContext): string {
  const problem = keyProblem(c.route.key);
  if (problem) throw new S3Error("InvalidArgument", `invalid key "${printable(c.route.key)}": ${problem}`);
  return c.route.key;
}

function userMetadataOf(req: http.IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!name.startsWith("x-amz-meta-")) continue;
    const short = name.slice("x-amz-meta-".length);
    const value = req.rawHeaders[i + 1]!;
    metadata[short] = metadata[short] === undefined ? value : `${metadata[short]},${value}`;
    bytes += short.length + Buffer.byteLength(value);
  }
  if (bytes > MAX_USER_METADATA_BYTES) throw new S3Error("MetadataTooLarge", `user metadata is limited to ${MAX_USER_METADATA_BYTES} bytes`);
  return metadata;
}

function setChecksumHeaders(res: http.ServerResponse, checksums: Record<string, string>): void {
  for (const [algorithm, value] of Object.entries(checksums)) {
    if ((CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) res.setHeader(`x-amz-checksum-${algorithm}`, value);
  }
}

function copySource(header: string): { bucket: string; key: string } {
  let text: string;
  try {
    text = decodeURIComponent(header.split("?")[0]!);
  } catch {
    throw new S3Error("InvalidArgument", "x-amz-copy-source has malformed percent-encoding");
  }
  if (header.includes("?versionId=") && !header.includes("?versionId=null")) throw new S3Error("NotImplemented", "copying a specific version is not supported");
  const match = /^\/?([^/]+)\/(.+)$/.exec(text);
  if (!match) throw new S3Error("InvalidArgument", "x-amz-copy-source must be /<bucket>/<key>");
  return { bucket: match[1]!, key: match[2]! };
}

/** Reads a small request body (XML documents): bounded, and checked against Content-MD5 and a hex x-amz-content-sha256. */
async function readSmallBody(c: RequestContext): Promise<Buffer> {
  continueUpload(c);
  const declared = Number(c.header("content-length") ?? "0");
  if (declared > MAX_XML_BYTES) throw new S3Error("MalformedXML", `the request document is larger than ${MAX_XML_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of c.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_XML_BYTES) throw new S3Error("MalformedXML", `the request document is larger than ${MAX_XML_BYTES} bytes`);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  const sha = c.header("x-amz-content-sha256");
  if (sha && /^[0-9a-f]{64}$/.test(sha) && createHash("sha256").update(body).digest("hex") !== sha) {
    throw new S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const md5 = c.header("content-md5");
  if (md5 !== undefined && createHash("md5").update(body).digest("base64") !== md5.trim()) throw new S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.");
  return body;
}

const identity = (text: string) => text;
const urlEncode = (text: string) => encodeURIComponent(text).replace(/%2F/g, "/");

function encodingType(query: Route["query"]): (text: string) => string {
  const type = param(query, "encoding-type");
  if (type === undefined || type === "") return identity;
  if (type !== "url") throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request: encoding-type must be url");
  return urlEncode;
}

function maxKeysOf(query: Route["query"], name: string): number {
  const text = param(query, name);
  if (text === undefined || text === "") return 1000;
  if (!/^\d{1,9}$/.test(text)) throw new S3Error("InvalidArgument", `${name} must be a non-negative integer`);
  return Math.min(Number(text), 1000);
}

/** The parameters every listing shares, and its page. */
async function listRequest(c: RequestContext, markerParam: "start-after" | "marker" | "key-marker", continuationToken?: string) {
  const q = c.route.query;
  const encode = encodingType(q);
  const maxKeys = maxKeysOf(q, "max-keys");
  const prefix = param(q, "prefix") ?? "";
  const delimiter = param(q, "delimiter") || undefined;
  const marker = param(q, markerParam) || undefined;
  const page = await listPage(c, { prefix, delimiter, startAfter: marker, continuationToken, maxKeys });
  return {
    encode,
    maxKeys,
    prefix,
    delimiter,
    marker,
    page,
    /** The last key or prefix of the page (v1 NextMarker). */
    last: [...page.objects.map((o) => o.key), ...page.commonPrefixes].sort().at(-1),
    encodingType: ["EncodingType", encode === identity ? undefined : "url"] as XmlNode,
    commonPrefixes: page.commonPrefixes.map((p): XmlNode => ["CommonPrefixes", [["Prefix", encode(p)]]]),
  };
}

async function listPage(
  c: RequestContext,
  options: { prefix: string; delimiter?: string; startAfter?: string; continuationToken?: string; maxKeys: number },
): Promise<ListResult> {
  if (options.maxKeys === 0) {
    await requireBucket(c);
    return { objects: [], commonPrefixes: [], isTruncated: false };
  }
  try {
    return await c.options.store.list(c.route.bucket, options);
  } catch (err) {
    if (err instanceof StorageError && err.code === "InvalidArgument") throw new S3Error("InvalidArgument", err.reason);
    throw err;
  }
}

function contents(objects: ListedObject[], encode: (s: string) => string, owner: boolean): XmlNode[] {
  return objects.map(
    (o): XmlNode => [
      "Contents",
      [
        ["Key", encode(o.key)],
        ["LastModified", o.lastModified.toISOString()],
        ["ETag", o.etag === undefined ? undefined : `"${o.etag}"`],
        ["Size", o.size],
        ["StorageClass", "STANDARD"],
        ...(owner ? [OWNER] : []),
      ],
    ],
  );
}

/** A delete of this key finds nothing: it is missing, or a key the store cannot hold (e.g. a "folder/" marker). */
function isAbsent(err: unknown): boolean {
  return err instanceof StorageError && (err.code === "NoSuchKey" || err.code === "KeyConflict" || err.code === "InvalidKey");
}

function toDeleteError(err: unknown): { code: string; message: string } {
  if (err instanceof StorageError) return { code: err.code === "InvalidKey" ? "InvalidArgument" : "InternalError", message: err.reason };
  return { code: "InternalError", message: "the object could not be deleted" };
}

function sendXml(c: RequestContext, status: number, root: string, children: XmlNode[]): void {
  sendRaw(c, status, xmlDocument(root, children));
}

function sendRaw(c: RequestContext, status: number, body: string): void {
  c.res.statusCode = status;
  c.res.setHeader("content-type", "application/xml");
  c.res.setHeader("content-length", Buffer.byteLength(body));
  c.res.end(body);
}
