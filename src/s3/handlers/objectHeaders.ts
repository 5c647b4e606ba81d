import type http from "node:http";
import { S3Error } from "../errors.js";
import { CHECKSUM_ALGORITHMS } from "../payload.js";
import type { RequestContext } from "./context.js";

/** S3's cap on user metadata (x-amz-meta-* names and values). */
const MAX_USER_METADATA_BYTES = 2048;

/**
 * The standard headers S3 stores with an object and returns on GET/HEAD (PutObject,
 * CreateMultipartUpload, CopyObject with REPLACE). Content-Type and Content-Encoding have fields of their own.
 */
export const STORED_CONTENT_HEADERS = ["cache-control", "content-disposition", "content-language", "expires"] as const;

export function contentHeadersOf(header: (name: string) => string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of STORED_CONTENT_HEADERS) {
    const value = header(name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

export function userMetadataOf(req: http.IncomingMessage): Record<string, string> {
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

/**
 * Access is all-or-nothing per key pair, so every object is private: `x-amz-acl: private` says just
 * that and is accepted; any other canned ACL or grant would be a promise we cannot keep (501).
 */
export function refuseNonPrivateAcl(c: RequestContext): void {
  const acl = c.header("x-amz-acl");
  if (acl !== undefined && acl.trim() !== "private") throw new S3Error("NotImplemented", `the canned ACL "${acl.slice(0, 40)}" is not supported: objects and buckets are private to the configured key pairs`);
  for (const grant of ["x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write", "x-amz-grant-write-acp"]) {
    if (c.header(grant) !== undefined) throw new S3Error("NotImplemented", `ACL grants (${grant}) are not supported`);
  }
}

/** Features whose headers we must not silently drop: the client would believe they apply. */
export function refuseUnsupportedWriteHeaders(c: RequestContext): void {
  const tagging = c.header("x-amz-tagging");
  // The Velero AWS plugin 1.14.1/1.14.2 always sends the header, usually empty (velero#9931).
  if (tagging !== undefined && tagging.trim() !== "") throw new S3Error("NotImplemented", "object tagging is not supported; remove the BSL's tagging setting");
  const sse = c.header("x-amz-server-side-encryption") ?? c.header("x-amz-server-side-encryption-customer-algorithm");
  if (sse !== undefined) throw new S3Error("NotImplemented", "server-side encryption is not supported; encrypt the volume, or let kopia encrypt (it always does)");
  if (c.header("x-amz-object-lock-mode") !== undefined || c.header("x-amz-object-lock-retain-until-date") !== undefined || c.header("x-amz-object-lock-legal-hold") !== undefined) {
    throw new S3Error("NotImplemented", "object lock is not supported");
  }
  if (c.header("x-amz-website-redirect-location") !== undefined) throw new S3Error("NotImplemented", "website redirects are not supported");
  refuseNonPrivateAcl(c);
}

export function setChecksumHeaders(res: http.ServerResponse, checksums: Record<string, string>): void {
  for (const [algorithm, value] of Object.entries(checksums)) {
    if ((CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) res.setHeader(`x-amz-checksum-${algorithm}`, value);
  }
}
