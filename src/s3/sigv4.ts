import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { getCanonicalHeaders, getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import type { Credentials } from "./credentials.js";
import { S3Error } from "./errors.js";

/**
 * SigV4 verification: header auth and presigned URLs. The canonical header values and the signing
 * key come from @smithy/signature-v4 (the AWS SDK's own signer), over exactly the headers the
 * client signed with their received values; this module parses, checks times and scopes, assembles
 * the canonical request and compares in constant time. (smithy's sign() itself cannot verify: it
 * drops a signed `date` header, and its query canonicaliser loses a parameter named `__proto__`.)
 * The unit tests check the result against smithy's signer and AWS's published vectors. Chunk and
 * trailer signatures of aws-chunked bodies chain from the seed signature.
 */

/**
 * Signing keys by secret, date and region: a key holds for a whole day, and deriving it takes four
 * HMACs (and smithy's own cache one more to name it) on every request. Cleared when it grows past
 * SIGNING_KEYS entries (keys of past days, or of rotated secrets).
 */
const signingKeys = new Map<string, Buffer>();
const SIGNING_KEYS = 256;

async function cachedSigningKey(identity: { accessKeyId: string; secretAccessKey: string }, shortDate: string, region: string): Promise<Buffer> {
  const id = `${identity.secretAccessKey}\0${identity.accessKeyId}\0${shortDate}\0${region}`;
  const cached = signingKeys.get(id);
  if (cached) return cached;
  const key = Buffer.from(await getSigningKey(Sha256, identity, shortDate, region, "s3"));
  if (signingKeys.size >= SIGNING_KEYS) signingKeys.clear();
  signingKeys.set(id, key);
  return key;
}

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
/** S3 refuses requests whose time is further than this from its clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** A presigned URL lives at most a week. */
export const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;

const ALGORITHM = "AWS4-HMAC-SHA256";
const Sha256 = Hash.bind(null, "sha256");

/** What verification needs of a request. */
export interface SignedRequest {
  method: string;
  /** The path as received, still percent-encoded, without the query. */
  rawPath: string;
  /** Decoded query parameters in order. */
  query: ReadonlyArray<readonly [string, string]>;
  /** A header's value as received (duplicates joined with ","), by lowercase name. */
  header: (name: string) => string | undefined;
}

/** A verified request: who signed it, for which scope, and what chunk signatures chain from. */
export interface AuthContext {
  accessKey: string;
  region: string;
  /** X-Amz-Date, e.g. 20261122T101500Z. */
  longDate: string;
  /** <yyyymmdd>/<region>/s3/aws4_request */
  scope: string;
  /** The request's signature: the seed of an aws-chunked body's chunk signatures. */
  signature: string;
  signingKey: Buffer;
  presigned: boolean;
}

interface ParsedAuth {
  accessKey: string;
  shortDate: string;
  region: string;
  signedHeaders: string[];
  signature: string;
  longDate: string;
}

/** Verifies a request's SigV4 signature (header or query); throws the S3Error a client should see. */
export async function authenticate(
  request: SignedRequest,
  credentials: Credentials,
  now: Date,
  options: {
    /** host[:port] values a signature may name instead of the received Host (the --public-url host behind an ingress). */
    alternateHosts?: readonly string[];
  } = {},
): Promise<AuthContext> {
  const presigned = request.query.some(([name]) => name === "X-Amz-Signature" || name === "X-Amz-Algorithm" || name === "X-Amz-Credential");
  const authorization = request.header("authorization");
  if (presigned && authorization !== undefined) throw new S3Error("InvalidArgument", "a request may use the Authorization header or query-string authentication, not both");
  if (!presigned && request.query.some(([name]) => name === "AWSAccessKeyId" || name === "Signature")) {
    throw new S3Error("AccessDenied", "Signature Version 2 presigned URLs are not supported; presign with Signature Version 4 (AWS4-HMAC-SHA256)");
  }
  if (!presigned && authorization === undefined) throw new S3Error("AccessDenied", "anonymous requests are not allowed: sign requests with AWS Signature Version 4");
  const auth = presigned ? parseQueryAuth(request, now) : parseHeaderAuth(authorization!, request, now);

  const secret = credentials.get(auth.accessKey);
  if (secret === undefined) throw new S3Error("InvalidAccessKeyId", `the access key id "${printableId(auth.accessKey)}" is not known to this server`);
  const identity = { accessKeyId: auth.accessKey, secretAccessKey: secret };
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = request.header(name);
    if (value === undefined) throw new S3Error("SignatureDoesNotMatch", `the signed header "${name}" is missing from the request`);
    headers[name] = value;
  }
  let payloadHash = UNSIGNED_PAYLOAD;
  if (!presigned) {
    const declared = request.header("x-amz-content-sha256");
    if (declared === undefined) throw new S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    payloadHash = declared;
  }
  // The canonical header values (trimmed, inner whitespace folded) are smithy's, over exactly the signed
  // headers — `date` included, which sign() would drop.
  const query = canonicalQuery(request.query);
  const scope = `${auth.shortDate}/${auth.region}/s3/aws4_request`;
  const signingKey = await cachedSigningKey(identity, auth.shortDate, auth.region);
  const signs = (path: string, host: string | undefined): boolean => {
    const canonicalHeaders = getCanonicalHeaders(
      { method: request.method, protocol: "http:", hostname: "", path: "/", headers: host === undefined ? headers : { ...headers, host } },
      undefined,
      new Set(auth.signedHeaders),
    );
    const names = Object.keys(canonicalHeaders).sort();
    const headerBlock = names.map((name) => `${name}:${canonicalHeaders[name]}\n`).join("");
    const canonicalRequest = [request.method, path, query, headerBlock, names.join(";"), payloadHash].join("\n");
    const stringToSign = [ALGORITHM, auth.longDate, scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
    return sameHex(createHmac("sha256", signingKey).update(stringToSign).digest("hex"), auth.signature);
  };
  // The request's own Host first; then the public hosts, for a proxy or ingress that rewrote Host.
  const hosts = [undefined, ...(auth.signedHeaders.includes("host") ? (options.alternateHosts ?? []) : [])];
  const valid = hosts.some((host) => pathCandidates(request.rawPath).some((path) => signs(path, host)));
  if (!valid) {
    throw new S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
  }
  return {
    accessKey: auth.accessKey,
    region: auth.region,
    longDate: auth.longDate,
    scope,
    signature: auth.signature,
    signingKey,
    presigned,
  };
}

function parseHeaderAuth(authorization: string, request: SignedRequest, now: Date): ParsedAuth {
  if (/^AWS\s/.test(authorization)) {
    throw new S3Error("AccessDenied", "Signature Version 2 is not supported; sign requests with Signature Version 4 (AWS4-HMAC-SHA256)");
  }
  if (authorization.startsWith("AWS4-ECDSA-P256-SHA256")) throw new S3Error("NotImplemented", "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported; use AWS4-HMAC-SHA256");
  if (!authorization.startsWith(`${ALGORITHM} `)) throw new S3Error("AuthorizationHeaderMalformed", `the Authorization header must start with "${ALGORITHM} "`);
  const fields = new Map<string, string>();
  for (const part of authorization.slice(ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new S3Error("AuthorizationHeaderMalformed", "the Authorization header is not Credential=…, SignedHeaders=…, Signature=…");
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw new S3Error("AuthorizationHeaderMalformed", "the Authorization header needs Credential, SignedHeaders and Signature");
  }
  const longDate = request.header("x-amz-date");
  if (longDate === undefined) throw new S3Error("AccessDenied", "AWS authentication requires an x-amz-date header");
  return checkParts(credential, signedHeaders, signature, longDate, now, "AuthorizationHeaderMalformed", false);
}

function parseQueryAuth(request: SignedRequest, now: Date): ParsedAuth {
  const value = (name: string): string => {
    const values = request.query.filter(([n]) => n === name);
    if (values.length !== 1) {
      throw new S3Error("AuthorizationQueryParametersError", `query-string authentication needs exactly one ${name} parameter (found ${values.length})`);
    }
    return values[0]![1];
  };
  const algorithm = value("X-Amz-Algorithm");
  if (algorithm !== ALGORITHM) throw new S3Error("AuthorizationQueryParametersError", `X-Amz-Algorithm must be ${ALGORITHM}, not "${algorithm.slice(0, 40)}"`);
  const expires = value("X-Amz-Expires");
  if (!/^\d{1,7}$/.test(expires) || Number(expires) < 1 || Number(expires) > MAX_PRESIGNED_SECONDS) {
    throw new S3Error("AuthorizationQueryParametersError", `X-Amz-Expires must be a number of seconds from 1 to ${MAX_PRESIGNED_SECONDS} (a week)`);
  }
  const auth = checkParts(value("X-Amz-Credential"), value("X-Amz-SignedHeaders"), value("X-Amz-Signature"), value("X-Amz-Date"), now, "AuthorizationQueryParametersError", true);
  const issued = parseAmzDate(auth.longDate)!.getTime();
  if (now.getTime() > issued + Number(expires) * 1000) {
    throw new S3Error("AccessDenied", "Request has expired", {
      "X-Amz-Expires": expires,
      Expires: new Date(issued + Number(expires) * 1000).toISOString(),
      ServerTime: now.toISOString(),
    });
  }
  if (issued - now.getTime() > MAX_SKEW_MS) throw new S3Error("AccessDenied", "Request is not valid yet: X-Amz-Date is more than 15 minutes in the future");
  return auth;
}

function checkParts(
  credential: string,
  signedHeaders: string,
  signature: string,
  longDate: string,
  now: Date,
  malformed: "AuthorizationHeaderMalformed" | "AuthorizationQueryParametersError",
  presigned: boolean,
): ParsedAuth {
  const parts = credential.split("/");
  if (parts.length !== 5 || parts[0] === "") {
    throw new S3Error(malformed, "the credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request");
  }
  const [accessKey, shortDate, region, service, terminator] = parts as [string, string, string, string, string];
  if (service !== "s3") throw new S3Error(malformed, `the credential scope names service "${service.slice(0, 40)}"; this is an s3 endpoint`);
  if (terminator !== "aws4_request") throw new S3Error(malformed, 'the credential scope must end with "aws4_request"');
  if (!/^[A-Za-z0-9-_]{1,64}$/.test(region)) throw new S3Error(malformed, "the credential scope's region is not a region name");
  const date = parseAmzDate(longDate);
  if (!date) throw new S3Error(presigned ? malformed : "AccessDenied", `X-Amz-Date must look like 20060102T150405Z, not "${longDate.slice(0, 40)}"`);
  if (!longDate.startsWith(shortDate) || !/^\d{8}$/.test(shortDate)) {
    throw new S3Error(malformed, `the credential date ${shortDate.slice(0, 16)} is not the date of X-Amz-Date ${longDate}`, { Region: region });
  }
  if (!presigned && Math.abs(date.getTime() - now.getTime()) > MAX_SKEW_MS) {
    throw new S3Error("RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.", {
      RequestTime: longDate,
      ServerTime: now.toISOString(),
      MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
    });
  }
  const names = signedHeaders.split(";");
  if (names.some((n) => !/^[a-z0-9-]+$/.test(n))) throw new S3Error(malformed, "SignedHeaders must be lowercase header names separated by ';'");
  if (!names.includes("host")) throw new S3Error(malformed, "SignedHeaders must include host");
  if (!/^[0-9a-f]{64}$/.test(signature)) throw new S3Error(malformed, "the signature must be 64 lowercase hex digits");
  return { accessKey, shortDate, region, signedHeaders: names, signature, longDate };
}

/** 20060102T150405Z → Date, or undefined. */
export function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return formatAmzDate(date) === text ? date : undefined;
}

export function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * The canonical URI is the path as the client encoded it. Clients differ on a few characters
 * (Go's net/url leaves `!$&'()*+,;=:@` alone where the SDKs escape them), so a mismatch is retried
 * with the AWS encoding of the decoded path before it counts as a bad signature.
 */
function pathCandidates(rawPath: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return [rawPath];
  }
  const canonical = awsUriEncode(decoded);
  return canonical === rawPath ? [rawPath] : [rawPath, canonical];
}

/** RFC 3986 unreserved characters stay; everything else is %XX of its UTF-8 bytes; '/' stays. */
export function awsUriEncode(path: string): string {
  return awsEscape(path).replace(/%2F/g, "/");
}

/**
 * Canonical query: every parameter but X-Amz-Signature, names and values AWS-escaped, sorted by
 * name then value. (smithy's getCanonicalQuery builds a plain object and loses a parameter named
 * `__proto__`.)
 */
function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs
    .filter(([name]) => name !== "X-Amz-Signature")
    .map(([name, value]) => [awsEscape(name), awsEscape(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

function awsEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const signers = new Map<string, SignatureV4>();

/** One signer per key pair (its signing-key cache then works across requests). */
function signerFor(identity: { accessKeyId: string; secretAccessKey: string }): SignatureV4 {
  const cacheKey = `${identity.accessKeyId}\0${createHash("sha256").update(identity.secretAccessKey).digest("hex")}`;
  let signer = signers.get(cacheKey);
  if (!signer) {
    if (signers.size > 100) signers.clear();
    signer = new SignatureV4({ credentials: identity, region: "us-east-1", service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: false });
    signers.set(cacheKey, signer);
  }
  return signer;
}

/** Constant-time compare of two signatures; anything but exactly 64 lowercase hex digits never matches. */
function sameHex(a: string, b: string): boolean {
  if (!HEX64.test(a) || !HEX64.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, "hex"), Buffer.from(b, "hex"));
}

const HEX64 = /^[0-9a-f]{64}$/;

function printableId(id: string): string {
  return id.replace(/[^\x21-\x7e]/g, "?").slice(0, 128);
}

/**
 * Verifies the chunk signatures of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body: each
 * chunk's signature covers its SHA-256 and the previous signature, starting from the request's.
 */
export class ChunkSignatureChain {
  private previous: string;

  constructor(private readonly auth: AuthContext) {
    this.previous = auth.signature;
  }

  /** For AwsChunkedDecoder's verifyChunk: true when the chunk's signature is the expected one. */
  verifyChunk = (signature: string, sha256Hex: string): boolean => {
    const expected = this.sign(["AWS4-HMAC-SHA256-PAYLOAD", this.auth.longDate, this.auth.scope, this.previous, EMPTY_SHA256, sha256Hex]);
    const ok = sameHex(expected, signature);
    if (ok) this.previous = signature;
    return ok;
  };

  /** The trailer signature covers the trailer lines (`name:value\n` each) and the last chunk signature. */
  verifyTrailer(trailers: ReadonlyMap<string, string>): boolean {
    const signature = trailers.get("x-amz-trailer-signature");
    if (signature === undefined) return false;
    const text = [...trailers].filter(([name]) => name !== "x-amz-trailer-signature").map(([name, value]) => `${name}:${value}\n`).join("");
    const expected = this.sign(["AWS4-HMAC-SHA256-TRAILER", this.auth.longDate, this.auth.scope, this.previous, createHash("sha256").update(text).digest("hex")]);
    return sameHex(expected, signature);
  }

  private sign(lines: string[]): string {
    return createHmac("sha256", this.auth.signingKey).update(lines.join("\n")).digest("hex");
  }
}

/** Mints a presigned GET URL (what `storage sign` prints and Velero's plugin would mint). */
export async function presignGet(options: {
  endpoint: URL;
  bucket: string;
  key: string;
  accessKey: string;
  secretKey: string;
  region: string;
  expiresInSeconds: number;
  now?: Date;
}): Promise<string> {
  const signer = signerFor({ accessKeyId: options.accessKey, secretAccessKey: options.secretKey });
  const basePath = options.endpoint.pathname.replace(/\/+$/, "");
  const path = `${basePath}/${awsUriEncode(options.bucket)}/${awsUriEncode(options.key)}`;
  const request: HttpRequest = {
    method: "GET",
    protocol: options.endpoint.protocol,
    hostname: options.endpoint.hostname,
    path,
    query: {},
    headers: { host: options.endpoint.host, "x-amz-content-sha256": UNSIGNED_PAYLOAD },
  };
  const signed = await signer.presign(request, {
    signingDate: options.now ?? new Date(),
    signingRegion: options.region,
    expiresIn: options.expiresInSeconds,
    unsignableHeaders: new Set(["x-amz-content-sha256"]),
    unhoistableHeaders: new Set(["x-amz-content-sha256"]),
  });
  const query = Object.entries(signed.query ?? {})
    .map(([name, value]) => `${awsUriEncode(name)}=${awsUriEncode(String(value)).replace(/\//g, "%2F")}`)
    .join("&");
  return `${options.endpoint.protocol}//${options.endpoint.host}${path}?${query}`;
}
