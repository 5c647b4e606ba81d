import { createHmac } from "node:crypto";

/**
 * LVP's URL signing written again from its description (shared/reference/kots-and-lvp.md section 5),
 * independently of src/storage/lvpSignature.ts: sign
 * `http://<podIP>:3000/<bucket>/<key>?expires=<QueryEscape(2006-01-02T15:04:05.000Z)>` with
 * HMAC-SHA1 and append `&signature=` + URL-safe base64 with '=' padding. Only for keys made of
 * characters Go leaves unescaped in paths (Velero's keys are).
 */
export function lvpPluginSign(key: Buffer, host: string, bucket: string, objectKey: string, expires: Date): string {
  const stamp = expires.toISOString().replace(/:/g, "%3A");
  const url = `http://${host}/${bucket}/${objectKey}?expires=${stamp}`;
  const signature = createHmac("sha1", key).update(url).digest("base64").replace(/\+/g, "-").replace(/\//g, "_");
  return `${url}&signature=${signature}`;
}
