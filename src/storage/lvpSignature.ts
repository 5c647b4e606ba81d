import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * local-volume-provider's signed download URLs, bit for bit, so URLs minted by an LVP plugin verify
 * here and URLs minted here work with LVP tooling:
 *
 *   message   = http://<host>/<bucket>/<key>?expires=<QueryEscape(YYYY-MM-DDTHH:MM:SS.mmmZ)>
 *   signature = base64url-with-padding(HMAC-SHA1(key, message))  (appended as &signature=…)
 *
 * The message is what Go's url.URL.String() prints; on verification LVP re-encodes every query
 * parameter except `signature` with url.Values.Encode() (sorted by name). The expiry is read as UTC.
 */

export const LVP_PORT = 3000;

/** Go's url.QueryEscape: everything but A-Z a-z 0-9 - _ . ~ is %XX, and space is '+'. */
export function goQueryEscape(text: string): string {
  return encodeBytes(text, (c) => isUnreserved(c)).replace(/%20/g, "+");
}

/** Go's url.URL.EscapedPath for a Path with no RawPath: unreserved plus $&+,/:;=@ stay literal. */
export function goPathEscape(path: string): string {
  return encodeBytes(path, (c) => isUnreserved(c) || "$&+,/:;=@".includes(String.fromCharCode(c)));
}

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e || c === 0x7e;
}

function encodeBytes(text: string, literal: (c: number) => boolean): string {
  let out = "";
  for (const c of Buffer.from(text)) out += literal(c) ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

/** Go layout 2006-01-02T15:04:05.000Z, in UTC. */
export function formatLvpExpiry(date: Date): string {
  return date.toISOString();
}

export function parseLvpExpiry(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) || date.toISOString() !== text ? undefined : date;
}

/** The exact string LVP signs, for a decoded path (`/bucket/key`) and the query parameters but `signature`. */
export function lvpMessage(scheme: string, host: string, path: string, query: ReadonlyArray<readonly [string, string]>): string {
  const sorted = [...query].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const encoded = sorted.map(([name, value]) => `${goQueryEscape(name)}=${goQueryEscape(value)}`).join("&");
  return `${scheme}://${host}${goPathEscape(path)}${encoded ? `?${encoded}` : ""}`;
}

function hmac(key: Buffer, message: string): Buffer {
  return createHmac("sha1", key).update(message).digest();
}

/** A download URL for `/<bucket>/<key>` on `baseUrl` (scheme://host[:port]), valid until `expires`. */
export function signLvpUrl(signingKey: Buffer, baseUrl: string, bucket: string, key: string, expires: Date): string {
  const base = new URL(baseUrl);
  const scheme = base.protocol.replace(/:$/, "");
  const message = lvpMessage(scheme, base.host, `/${bucket}/${key}`, [["expires", formatLvpExpiry(expires)]]);
  return `${message}&signature=${hmac(signingKey, message).toString("base64url")}${padding(20)}`;
}

/** Go's base64.URLEncoding keeps '=' padding; 20 bytes of SHA-1 → one '='. */
function padding(bytes: number): string {
  return "=".repeat((3 - (bytes % 3)) % 3);
}

export type LvpVerdict = { ok: true; expires: Date } | { ok: false; reason: string };

export interface LvpRequest {
  /** Decoded path, `/bucket/key`. */
  path: string;
  /** The query in order, as parsed from the request. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Every scheme://host the URL may have been issued for: the request's Host, the pod IP LVP put in it, configured names. */
  origins: ReadonlyArray<{ scheme: string; host: string }>;
}

/**
 * Checks an LVP signed URL. Unlike LVP, it accepts a signature made for any of the request's
 * possible origins (so URLs work through a Service, port-forward or ingress, LVP#12) and for any
 * of several keys (rotation), always with a constant-time compare.
 */
export function verifyLvpRequest(request: LvpRequest, keys: readonly Buffer[], now: Date): LvpVerdict {
  const expiresValues = request.query.filter(([name]) => name === "expires");
  const signatures = request.query.filter(([name]) => name === "signature");
  if (expiresValues.length === 0) return { ok: false, reason: "the URL has no expires parameter" };
  if (expiresValues.length > 1) return { ok: false, reason: "the URL has more than one expires parameter" };
  const expires = parseLvpExpiry(expiresValues[0]![1]);
  if (!expires) return { ok: false, reason: "the expires parameter is not a time like 2006-01-02T15:04:05.000Z" };
  if (expires.getTime() < now.getTime()) return { ok: false, reason: "the URL has expired" };
  if (signatures.length !== 1) return { ok: false, reason: signatures.length === 0 ? "the URL has no signature" : "the URL has more than one signature" };
  const given = decodeSignature(signatures[0]![1]);
  if (!given) return { ok: false, reason: "the signature is not URL-safe base64 of 20 bytes" };
  if (keys.length === 0) return { ok: false, reason: "no signing key is configured" };
  const rest = request.query.filter(([name]) => name !== "signature");
  let valid = false;
  for (const origin of request.origins) {
    const message = lvpMessage(origin.scheme, origin.host, request.path, rest);
    // Check every candidate (no early exit), so timing does not reveal which origin or key matched.
    for (const key of keys) valid = timingSafeEqual(hmac(key, message), given) || valid;
  }
  return valid ? { ok: true, expires } : { ok: false, reason: "the signature does not match this URL" };
}

function decodeSignature(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]{27}=?$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.length === 20 ? bytes : undefined;
}
