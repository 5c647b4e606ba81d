import { S3Error } from "./errors.js";

export type Operation =
  | "ListBuckets"
  | "HeadBucket"
  | "CreateBucket"
  | "DeleteBucket"
  | "GetBucketLocation"
  | "GetBucketVersioning"
  | "ListObjects"
  | "ListObjectsV2"
  | "ListObjectVersions"
  | "ListMultipartUploads"
  | "DeleteObjects"
  | "HeadObject"
  | "GetObject"
  | "GetObjectTagging"
  | "PutObject"
  | "CopyObject"
  | "DeleteObject"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "UploadPartCopy"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListParts";

/** S3's key limit, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;

export interface Route {
  operation: Operation;
  bucket: string;
  key: string;
  /** Decoded query parameters in order ('+' is a literal plus, as in SigV4's canonical query). */
  query: Array<[string, string]>;
  /** The path as received (for signature checks). */
  rawPath: string;
}

/** Query parameters that select a feature we do not have: answered 501 instead of being mistaken for a plain GET/PUT. */
export const UNSUPPORTED_SUBRESOURCES: ReadonlySet<string> = new Set([
  "acl",
  "policy",
  "policyStatus",
  "lifecycle",
  "cors",
  "tagging",
  "encryption",
  "object-lock",
  "retention",
  "legal-hold",
  "logging",
  "website",
  "replication",
  "notification",
  "ownershipControls",
  "publicAccessBlock",
  "accelerate",
  "requestPayment",
  "analytics",
  "metrics",
  "inventory",
  "intelligent-tiering",
  "torrent",
  "attributes",
  "restore",
  "select",
  "session",
]);

/** S3's operation names for the subresources we refuse, so a 501 is counted and logged as what it was. */
const SUBRESOURCE_OPERATIONS: Record<string, string> = {
  acl: "Acl",
  policy: "Policy",
  policyStatus: "PolicyStatus",
  lifecycle: "LifecycleConfiguration",
  cors: "Cors",
  tagging: "Tagging",
  encryption: "Encryption",
  "object-lock": "ObjectLockConfiguration",
  retention: "Retention",
  "legal-hold": "LegalHold",
  logging: "Logging",
  website: "Website",
  replication: "Replication",
  notification: "NotificationConfiguration",
  ownershipControls: "OwnershipControls",
  publicAccessBlock: "PublicAccessBlock",
  accelerate: "AccelerateConfiguration",
  requestPayment: "RequestPayment",
  analytics: "AnalyticsConfiguration",
  metrics: "MetricsConfiguration",
  inventory: "InventoryConfiguration",
  "intelligent-tiering": "IntelligentTieringConfiguration",
  torrent: "Torrent",
  attributes: "Attributes",
};

/** GetBucketAcl, PutObjectTagging, RestoreObject, …: the name S3 gives a request for a subresource. */
export function subresourceOperation(method: string, onObject: boolean, subresource: string): string {
  if (subresource === "restore") return "RestoreObject";
  if (subresource === "select") return "SelectObjectContent";
  if (subresource === "session") return "CreateSession";
  const verb = { GET: "Get", HEAD: "Get", PUT: "Put", DELETE: "Delete", POST: "Post" }[method] ?? method;
  return `${verb}${onObject ? "Object" : "Bucket"}${SUBRESOURCE_OPERATIONS[subresource] ?? subresource}`;
}

/** A request for something this server does not do: 501, carrying the S3 operation name for logs and metrics. */
export class NotImplementedError extends S3Error {
  constructor(
    readonly operation: string,
    what: string,
  ) {
    super("NotImplemented", `${what} is not implemented by this server`);
  }
}

/**
 * Which operation a request is, from method, path, query and Host. Path style is `/<bucket>/<key>`;
 * virtual-host style applies when the Host is `<bucket>.<domain>` for a configured domain.
 */
export function route(method: string, rawUrl: string, host: string | undefined, domains: readonly string[], headers: { copySource?: string } = {}): Route {
  if (!rawUrl.startsWith("/")) throw new S3Error("InvalidURI", "the request target must be an absolute path");
  const q = rawUrl.indexOf("?");
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = parseQuery(q < 0 ? "" : rawUrl.slice(q + 1));
  const path = decode(rawPath, "path");

  let bucket: string;
  let key: string;
  const hostBucket = virtualHostBucket(host, domains);
  if (hostBucket !== undefined) {
    bucket = hostBucket;
    key = path.slice(1);
  } else {
    const slash = path.indexOf("/", 1);
    bucket = slash < 0 ? path.slice(1) : path.slice(1, slash);
    key = slash < 0 ? "" : path.slice(slash + 1);
  }
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new S3Error("KeyTooLongError", `Your key is too long: ${Buffer.byteLength(key)} bytes, at most ${MAX_KEY_BYTES}`);
  const has = (name: string) => query.some(([n]) => n === name);
  const unsupported = query.find(([name]) => UNSUPPORTED_SUBRESOURCES.has(name))?.[0];
  const notImplemented = (what: string, operation: string) => new NotImplementedError(operation, what);
  const done = (operation: Operation): Route => ({ operation, bucket, key, query, rawPath });

  if (bucket === "") {
    if (method === "GET" || method === "HEAD") return done("ListBuckets");
    throw new S3Error("MethodNotAllowed", `${method} is not allowed on the service root`);
  }
  if (key === "") {
    if (unsupported) throw notImplemented(`the bucket subresource "${unsupported}"`, subresourceOperation(method, false, unsupported));
    switch (method) {
      case "GET":
        if (has("location")) return done("GetBucketLocation");
        if (has("versioning")) return done("GetBucketVersioning");
        if (has("uploads")) return done("ListMultipartUploads");
        if (has("versions")) return done("ListObjectVersions");
        if (query.some(([n, v]) => n === "list-type" && v === "2")) return done("ListObjectsV2");
        if (has("list-type")) throw new S3Error("InvalidArgument", "list-type must be 2");
        return done("ListObjects");
      case "HEAD":
        return done("HeadBucket");
      case "PUT":
        if (has("versioning")) throw notImplemented("PutBucketVersioning", "PutBucketVersioning");
        return done("CreateBucket");
      case "DELETE":
        return done("DeleteBucket");
      case "POST":
        if (has("delete")) return done("DeleteObjects");
        throw notImplemented("this POST on a bucket (browser POST uploads included)", "PostObject");
      default:
        throw new S3Error("MethodNotAllowed", `${method} is not allowed on a bucket`);
    }
  }
  // No object has tags (writes carrying tags are refused), so reading a tag set is answered: it is empty.
  // aws s3 cp/mv reads the source's tags before a multipart copy.
  if (unsupported === "tagging" && method === "GET") return done("GetObjectTagging");
  if (unsupported) throw notImplemented(`the object subresource "${unsupported}"`, subresourceOperation(method, true, unsupported));
  switch (method) {
    case "GET":
      return done(has("uploadId") ? "ListParts" : "GetObject");
    case "HEAD":
      return done("HeadObject");
    case "PUT":
      if (has("uploadId") || has("partNumber")) return done(headers.copySource !== undefined ? "UploadPartCopy" : "UploadPart");
      return done(headers.copySource !== undefined ? "CopyObject" : "PutObject");
    case "DELETE":
      return done(has("uploadId") ? "AbortMultipartUpload" : "DeleteObject");
    case "POST":
      if (has("uploads")) return done("CreateMultipartUpload");
      if (has("uploadId")) return done("CompleteMultipartUpload");
      throw notImplemented("this POST on an object", "PostObject");
    default:
      throw new S3Error("MethodNotAllowed", `${method} is not allowed on an object`);
  }
}

function virtualHostBucket(host: string | undefined, domains: readonly string[]): string | undefined {
  if (!host || domains.length === 0) return undefined;
  const name = host.replace(/:\d+$/, "").toLowerCase();
  for (const domain of domains) {
    const suffix = `.${domain.toLowerCase()}`;
    if (name.endsWith(suffix) && name.length > suffix.length) return name.slice(0, -suffix.length);
  }
  return undefined;
}

export function parseQuery(raw: string): Array<[string, string]> {
  if (raw === "") return [];
  return raw
    .split("&")
    .filter((part) => part !== "")
    .map((part) => {
      const eq = part.indexOf("=");
      return eq < 0 ? [decode(part, "query"), ""] : [decode(part.slice(0, eq), "query"), decode(part.slice(eq + 1), "query")];
    });
}

function decode(text: string, where: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3Error("InvalidURI", `the request ${where} has malformed percent-encoding or is not UTF-8`);
  }
}

/** One query parameter's value, or undefined. */
export function param(query: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  return query.find(([n]) => n === name)?.[1];
}
