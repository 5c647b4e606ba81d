import { StorageError } from "../../storage/errors.js";
import { sendObjectBytes } from "../../storage/objectResponse.js";
import { decideRange } from "../../storage/range.js";
import type { ObjectInfo, OpenObject } from "../../storage/store.js";
import { parseCopySource } from "../copySource.js";
import { S3Error } from "../errors.js";
import { partRange } from "../objectParts.js";
import { incomingBody } from "../payload.js";
import { bareEtag, checkWriteCondition, copySourcePrecondition, readPrecondition, writeConditionOf, type ConditionHeaders, type WriteCondition } from "../preconditions.js";
import { param } from "../routing.js";
import { listOf, parseXml, textOf, type XmlNode } from "../xml.js";
import { continueUpload, readSmallBody, requireBucket, sendXml, type Handler, type RequestContext } from "./context.js";
import { contentHeadersOf, refuseUnsupportedWriteHeaders, setChecksumHeaders, userMetadataOf } from "./objectHeaders.js";

const MAX_DELETE_OBJECTS = 1000;

export const OBJECT_HANDLERS = {
  HeadObject: async (c) => getObject(c),
  GetObject: async (c) => getObject(c),

  GetObjectTagging: async (c) => {
    await (await openObject(c, c.route.bucket, c.route.key)).close();
    sendXml(c, 200, "Tagging", [["TagSet", []]]);
  },

  PutObject: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const condition = writeConditionOf(c.header("if-match"), c.header("if-none-match"));
    const userMetadata = userMetadataOf(c.req);
    const incoming = incomingBody({ header: c.header, stream: c.req }, c.auth, c.options.backend.maxObjectBytes);
    await requireBucket(c);
    // A condition that fails now fails before the body is sent; it is checked again when the object is published.
    if (condition) checkWriteCondition(condition, await currentObject(c, c.route.bucket, c.route.key));
    continueUpload(c);
    const result = await c.options.backend.putObject(c.route.bucket, c.route.key, incoming.body, {
      ...incoming.options,
      contentType: c.header("content-type") ?? undefined,
      contentEncoding: incoming.contentEncoding,
      contentHeaders: contentHeadersOf(c.header),
      userMetadata,
      condition,
    });
    c.options.metrics.bytesReceived.inc({ server: "s3" }, result.size);
    c.res.setHeader("etag", `"${result.etag}"`);
    setChecksumHeaders(c.res, result.checksums);
    c.res.end();
  },

  CopyObject: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const condition = writeConditionOf(c.header("if-match"), c.header("if-none-match"));
    const source = parseCopySource(c.header("x-amz-copy-source")!);
    const directive = (c.header("x-amz-metadata-directive") ?? "COPY").toUpperCase();
    if (directive !== "COPY" && directive !== "REPLACE") throw new S3Error("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE");
    await readSmallBody(c);
    const object = await openCopySource(c, source);
    const replace = directive === "REPLACE";
    try {
      if (!replace && source.bucket === c.route.bucket && source.key === c.route.key) {
        throw new S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
      }
      if (condition) checkWriteCondition(condition, await currentObject(c, c.route.bucket, c.route.key));
    } catch (err) {
      await object.close();
      throw err;
    }
    const info = object.info;
    const result = await c.options.backend.copyObject(object, c.route.bucket, c.route.key, {
      expectedSize: info.size,
      contentType: replace ? (c.header("content-type") ?? undefined) : info.contentType,
      contentEncoding: replace ? (c.header("content-encoding") ?? undefined) : info.contentEncoding,
      contentHeaders: replace ? contentHeadersOf(c.header) : info.contentHeaders,
      userMetadata: replace ? userMetadataOf(c.req) : info.userMetadata,
      // The copy is one piece: a composite (per-part) checksum no longer describes it.
      checksums: info.checksumType === "COMPOSITE" ? {} : info.checksums,
      condition,
    });
    sendXml(c, 200, "CopyObjectResult", [
      ["LastModified", result.lastModified.toISOString()],
      ["ETag", `"${result.etag}"`],
    ]);
  },

  DeleteObject: async (c) => {
    await requireBucket(c);
    const ifEtag = await deleteCondition(c, c.route.key, {
      etag: c.header("if-match"),
      lastModified: c.header("x-amz-if-match-last-modified-time"),
      size: c.header("x-amz-if-match-size"),
    });
    await c.options.backend.deleteObject(c.route.bucket, c.route.key, ifEtag === undefined ? {} : { ifEtag }).catch((err: unknown) => {
      // Deleting what is not there succeeds in S3 (and minio-go insists on 204), unless a condition named it.
      if (ifEtag !== undefined || !isAbsent(err)) throw err;
    });
    c.res.statusCode = 204;
    c.res.end();
  },

  DeleteObjects: async (c) => {
    await requireBucket(c);
    const doc = parseXml(await readSmallBody(c), "Delete");
    const quiet = textOf(doc, "Quiet")?.trim() === "true";
    const objects = listOf(doc, "Object");
    if (objects.length === 0) throw new S3Error("MalformedXML", "the Delete document names no Object");
    if (objects.length > MAX_DELETE_OBJECTS) throw new S3Error("MalformedXML", `at most ${MAX_DELETE_OBJECTS} objects can be deleted per request`);
    const requests = objects.map((object) => {
      const key = textOf(object, "Key");
      if (key === undefined) throw new S3Error("MalformedXML", "every Object in a Delete document needs a Key");
      if (textOf(object, "VersionId") !== undefined && textOf(object, "VersionId") !== "null") throw new S3Error("NotImplemented", "deleting a specific version is not supported");
      return { key, etag: textOf(object, "ETag"), lastModified: textOf(object, "LastModifiedTime"), size: textOf(object, "Size") };
    });
    const results: XmlNode[] = [];
    for (const { key, ...conditions } of requests) {
      try {
        const ifEtag = await deleteCondition(c, key, conditions);
        await c.options.backend.deleteObject(c.route.bucket, key, ifEtag === undefined ? {} : { ifEtag }).catch((err: unknown) => {
          if (ifEtag !== undefined || !isAbsent(err)) throw err;
        });
        if (!quiet) results.push(["Deleted", [["Key", key]]]);
      } catch (err) {
        const error = toDeleteError(err);
        results.push(["Error", [["Key", key], ["Code", error.code], ["Message", error.message]]]);
      }
    }
    sendXml(c, 200, "DeleteResult", results);
  },
} satisfies Record<string, Handler>;

async function getObject(c: RequestContext): Promise<void> {
  const object = await openObject(c, c.route.bucket, c.route.key);
  const { info } = object;
  const res = c.res;
  const partNumber = param(c.route.query, "partNumber");
  try {
    if (partNumber !== undefined && c.header("range") !== undefined) throw new S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("last-modified", info.lastModified.toUTCString());
    res.setHeader("content-type", info.contentType);
    if (info.contentEncoding) res.setHeader("content-encoding", info.contentEncoding);
    for (const [name, value] of Object.entries(info.contentHeaders ?? {})) res.setHeader(name, value);
    // Presigned GETs may override what the response says (S3: response-content-type and friends).
    for (const [name, header] of RESPONSE_OVERRIDES) {
      const value = param(c.route.query, name);
      if (value !== undefined) res.setHeader(header, value);
    }
    if (info.etag) res.setHeader("etag", `"${info.etag}"`);
    for (const [name, value] of Object.entries(info.userMetadata)) res.setHeader(`x-amz-meta-${name}`, value);
    const precondition = readPrecondition(conditionHeaders(c), { etag: info.etag, lastModified: info.lastModified });
    if (precondition === 304) {
      res.statusCode = 304;
      res.removeHeader("content-type");
      await object.close();
      res.end();
      return;
    }
    if (precondition === 412) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  } catch (err) {
    await object.close();
    throw err;
  }
  let start = 0;
  let end = info.size - 1;
  let whole = true;
  if (partNumber !== undefined) {
    let part: ReturnType<typeof partRange>;
    try {
      part = partRange(partNumber, info.partSizes, info.size);
    } catch (err) {
      await object.close();
      throw err;
    }
    ({ start, end } = part);
    if (info.partSizes) res.setHeader("x-amz-mp-parts-count", part.count);
    // An empty object has no byte range to name: it is answered whole.
    if (info.size > 0) {
      res.statusCode = 206;
      res.setHeader("content-range", `bytes ${start}-${end}/${info.size}`);
      whole = start === 0 && end === info.size - 1;
    }
  } else {
    const range = decideRange(c.header("range"), info.size);
    if (range.kind === "unsatisfiable") {
      await object.close();
      throw new S3Error("InvalidRange", "The requested range is not satisfiable", { ActualObjectSize: String(info.size) });
    }
    if (range.kind === "partial") {
      ({ start, end } = range);
      whole = false;
      res.statusCode = 206;
      res.setHeader("content-range", `bytes ${start}-${end}/${info.size}`);
    }
  }
  if (whole && c.header("x-amz-checksum-mode")?.toUpperCase() === "ENABLED" && Object.keys(info.checksums).length > 0) {
    // Only a whole-object read gets the checksum: a client validates the bytes it received against it.
    setChecksumHeaders(res, info.checksums);
    res.setHeader("x-amz-checksum-type", info.checksumType ?? "FULL_OBJECT");
  }
  res.setHeader("content-length", end - start + 1);
  await sendObjectBytes(c.req, res, object, { start, end }, { metrics: c.options.metrics, server: "s3", log: c.options.log });
}

const RESPONSE_OVERRIDES: Array<[string, string]> = [
  ["response-content-type", "content-type"],
  ["response-content-language", "content-language"],
  ["response-expires", "expires"],
  ["response-cache-control", "cache-control"],
  ["response-content-disposition", "content-disposition"],
  ["response-content-encoding", "content-encoding"],
];

function conditionHeaders(c: RequestContext, prefix = ""): ConditionHeaders {
  return {
    ifMatch: c.header(`${prefix}if-match`),
    ifNoneMatch: c.header(`${prefix}if-none-match`),
    ifModifiedSince: c.header(`${prefix}if-modified-since`),
    ifUnmodifiedSince: c.header(`${prefix}if-unmodified-since`),
  };
}

export async function openObject(c: RequestContext, bucket: string, key: string): Promise<OpenObject> {
  try {
    return await c.options.backend.getObject(bucket, key);
  } catch (err) {
    // A folder, a key the store cannot hold, or a path through a file: none is an object.
    if (err instanceof StorageError && (err.code === "InvalidKey" || err.code === "KeyConflict" || err.code === "NoSuchKey")) throw new S3Error("NoSuchKey", "The specified key does not exist.");
    throw err;
  }
}

/** The source of CopyObject and UploadPartCopy, opened, its `x-amz-copy-source-if-*` conditions checked (412). */
export async function openCopySource(c: RequestContext, source: { bucket: string; key: string }): Promise<OpenObject> {
  const object = await openObject(c, source.bucket, source.key);
  if (!copySourcePrecondition(conditionHeaders(c, "x-amz-copy-source-"), { etag: object.info.etag, lastModified: object.info.lastModified })) {
    await object.close();
    throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold (x-amz-copy-source-if-*)");
  }
  return object;
}

/** The object a conditional write would replace, or undefined when there is none. */
export async function currentObject(c: RequestContext, bucket: string, key: string): Promise<{ etag?: string } | undefined> {
  try {
    const info = await c.options.backend.headObject(bucket, key);
    return { etag: info.etag };
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

/**
 * S3 DeleteObject's If-Match, x-amz-if-match-last-modified-time and x-amz-if-match-size (and the
 * ETag, LastModifiedTime and Size of a DeleteObjects entry): checked against the current object;
 * a failure is 412, a missing object 404. Returns the ETag the delete must still find at the key.
 */
async function deleteCondition(c: RequestContext, key: string, conditions: { etag?: string; lastModified?: string; size?: string }): Promise<string | undefined> {
  const { etag, lastModified, size } = conditions;
  if (etag === undefined && lastModified === undefined && size === undefined) return undefined;
  let info: ObjectInfo;
  try {
    info = await c.options.backend.headObject(c.route.bucket, key);
  } catch (err) {
    if (isAbsent(err)) throw new S3Error("NoSuchKey", "The specified key does not exist.");
    throw err;
  }
  const failed = (what: string) => new S3Error("PreconditionFailed", `At least one of the pre-conditions you specified did not hold (${what})`);
  if (etag !== undefined && etag.trim() !== "*" && bareEtag(etag) !== info.etag) throw failed("If-Match");
  if (lastModified !== undefined) {
    const wanted = Date.parse(lastModified);
    if (Number.isNaN(wanted)) throw new S3Error("InvalidArgument", "x-amz-if-match-last-modified-time must be an HTTP date");
    if (Math.floor(info.lastModified.getTime() / 1000) * 1000 !== wanted) throw failed("last modified time");
  }
  if (size !== undefined) {
    if (!/^\d{1,16}$/.test(size.trim())) throw new S3Error("InvalidArgument", "x-amz-if-match-size must be a number of bytes");
    if (Number(size) !== info.size) throw failed("size");
  }
  // Pin the delete to the version just checked, so a write in between is not deleted by mistake.
  return info.etag ?? (etag !== undefined && etag.trim() !== "*" ? bareEtag(etag) : undefined);
}

/** A delete of this key finds nothing: it is missing, or a key the store cannot hold. */
function isAbsent(err: unknown): boolean {
  return (err instanceof StorageError && (err.code === "NoSuchKey" || err.code === "KeyConflict" || err.code === "InvalidKey")) || (err instanceof S3Error && err.code === "NoSuchKey");
}

function toDeleteError(err: unknown): { code: string; message: string } {
  if (err instanceof S3Error) return { code: err.code, message: err.message };
  if (err instanceof StorageError) {
    if (err.code === "InvalidKey") return { code: "InvalidArgument", message: err.reason };
    if (err.code === "PreconditionFailed") return { code: "PreconditionFailed", message: "At least one of the pre-conditions you specified did not hold" };
    if (err.code === "NoSuchKey") return { code: "NoSuchKey", message: "The specified key does not exist." };
    return { code: "InternalError", message: "the object could not be deleted" };
  }
  return { code: "InternalError", message: "the object could not be deleted" };
}

export type { WriteCondition };
