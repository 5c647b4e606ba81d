import { createHash } from "node:crypto";
import type http from "node:http";
import { bucketNameProblem } from "../../storage/keys.js";
import { S3Error } from "../errors.js";
import type { Route } from "../routing.js";
import type { S3ServerOptions } from "../server.js";
import type { AuthContext } from "../sigv4.js";
import { MAX_XML_BYTES, xmlDocument, type XmlNode } from "../xml.js";

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

export type Handler = (c: RequestContext) => Promise<void>;

export const OWNER: XmlNode = ["Owner", [["ID", "app-snapshots"], ["DisplayName", "app-snapshots"]]];
export const INITIATOR: XmlNode = ["Initiator", [["ID", "app-snapshots"], ["DisplayName", "app-snapshots"]]];

export function sendXml(c: RequestContext, status: number, root: string, children: XmlNode[]): void {
  sendRaw(c, status, xmlDocument(root, children));
}

export function sendRaw(c: RequestContext, status: number, body: string): void {
  c.res.statusCode = status;
  c.res.setHeader("content-type", "application/xml");
  c.res.setHeader("content-length", Buffer.byteLength(body));
  c.res.end(body);
}

export async function requireBucket(c: RequestContext): Promise<void> {
  const problem = bucketNameProblem(c.route.bucket);
  if (problem) throw new S3Error("InvalidBucketName", problem);
  if (!(await c.options.backend.bucketExists(c.route.bucket))) throw new S3Error("NoSuchBucket", "The specified bucket does not exist");
}

/** `Expect: 100-continue`: the request was checked, now ask for the body. */
export function continueUpload(c: RequestContext): void {
  if (c.header("expect")?.toLowerCase() === "100-continue") c.res.writeContinue();
}

/** Reads a small request body (XML documents): bounded, and checked against Content-MD5 and a hex x-amz-content-sha256. */
export async function readSmallBody(c: RequestContext): Promise<Buffer> {
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
