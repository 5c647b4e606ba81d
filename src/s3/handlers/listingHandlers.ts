import { StorageError } from "../../storage/errors.js";
import type { ListedObject, ListResult } from "../../storage/listing.js";
import { S3Error } from "../errors.js";
import { param, type Route } from "../routing.js";
import type { XmlNode } from "../xml.js";
import { INITIATOR, OWNER, requireBucket, sendXml, type Handler, type RequestContext } from "./context.js";

export const LISTING_HANDLERS = {
  ListObjectsV2: async (c) => {
    // An empty continuation-token is "from the start" (some clients send the parameter always).
    const token = param(c.route.query, "continuation-token") || undefined;
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
      // ListObjects (v1) returns Prefix as sent even with encoding-type=url (botocore does not decode it);
      // Marker, NextMarker, Delimiter, Key and CommonPrefixes are encoded.
      ["Prefix", l.prefix],
      ["Marker", l.encode(l.marker ?? "")],
      // S3 sends NextMarker only with a delimiter; without one the client continues from its last Key.
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
    const all = (await c.options.backend.listMultipartUploads(c.route.bucket)).filter(
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
          [["Key", encode(record.key)], ["UploadId", uploadId], INITIATOR, OWNER, ["StorageClass", "STANDARD"], ["Initiated", record.initiated]],
        ],
      ),
    ]);
  },
} satisfies Record<string, Handler>;

const identity = (text: string) => text;
const urlEncode = (text: string) => encodeURIComponent(text).replace(/%2F/g, "/");

export function encodingType(query: Route["query"]): (text: string) => string {
  const type = param(query, "encoding-type");
  if (type === undefined || type === "") return identity;
  if (type !== "url") throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request: encoding-type must be url");
  return urlEncode;
}

export function maxKeysOf(query: Route["query"], name: string): number {
  const text = param(query, name);
  if (text === undefined || text === "") return 1000;
  if (!/^\d{1,9}$/.test(text)) throw new S3Error("InvalidArgument", `${name} must be a non-negative integer`);
  return Math.min(Number(text), 1000);
}

/** The greatest of keys and prefixes in UTF-8 byte order (the order of the listing). */
export function lastInByteOrder(names: readonly string[]): string | undefined {
  let last: Buffer | undefined;
  for (const name of names) {
    const bytes = Buffer.from(name);
    if (last === undefined || Buffer.compare(bytes, last) > 0) last = bytes;
  }
  return last?.toString();
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
    /** The last key or prefix of the page (v1 NextMarker, NextKeyMarker). */
    last: lastInByteOrder([...page.objects.map((o) => o.key), ...page.commonPrefixes]),
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
    return await c.options.backend.listObjects(c.route.bucket, options);
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
