/**
 * What the multipart crash test writes and how it checks the result: version v of one key is a
 * three-part upload of a generated body; after a SIGKILL anywhere (create, parts, Complete's copy
 * and publish) the key holds a whole version or nothing, never a mix or a partial copy.
 */
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { MultipartUploads } from "../../src/s3/multipart.js";
import { INTERNAL_DIR } from "../../src/storage/layout.js";
import { ObjectStore } from "../../src/storage/store.js";
import { StorageError } from "../../src/storage/errors.js";
import { bodyBytes } from "./crashCheck.js";

export const MPU_BUCKET = "crash";
export const MPU_KEY = "mpu/object";
export const MPU_MIN_PART = 64 * 1024;
/**
 * Odd versions: parts of unequal sizes, which Complete copies; even ones: equal parts and a short last
 * one, which the server writes in place and Complete publishes without copying (src/s3/partSlots.ts).
 */
const partSizes = (version: number) => (version % 2 === 1 ? [3 * MPU_MIN_PART, 2 * MPU_MIN_PART + 17, 1000] : [3 * MPU_MIN_PART, 3 * MPU_MIN_PART, 1000]);

/** The parts of a version: three slices of one generated body, so the object is their concatenation. */
export function versionParts(seed: string, version: number): Buffer[] {
  const sizes = partSizes(version);
  const whole = bodyBytes(seed, MPU_KEY, version, sizes.reduce((a, b) => a + b, 0));
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(whole.subarray(at, at + size));
    at += size;
  }
  return parts;
}

/** S3's multipart ETag of a version: MD5 of the part MD5s, "-3". */
export function versionEtag(seed: string, version: number): string {
  const md5s = versionParts(seed, version).map((p) => createHash("md5").update(p).digest());
  return `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${md5s.length}`;
}

export interface MultipartCheck {
  /** The version now stored, or null. */
  stored: number | null;
  violations: string[];
}

/**
 * Reopens the store as a restarted server would (temp files reclaimed) and checks: the key holds
 * exactly one started version, not older than the last acknowledged one, with its multipart ETag;
 * nothing else is in the bucket; temp folders are empty; left-over uploads are reclaimable.
 */
export async function checkMultipartCrash(
  root: string,
  seed: string,
  lines: string[],
  prior: { lastAcked: number | null; stored: number | null },
): Promise<MultipartCheck & { lastAcked: number | null }> {
  const { lastAcked } = prior;
  const violations: string[] = [];
  const started = lines.flatMap((l) => (/^START (\d+)$/.exec(l) ? [Number(l.slice(6))] : []));
  const acked = lines.flatMap((l) => (/^ACK (\d+) /.exec(l) ? [Number(l.split(" ")[1])] : []));
  for (const line of lines.filter((l) => l.startsWith("ACK "))) {
    const [, version, etag] = line.split(" ");
    if (etag !== versionEtag(seed, Number(version))) violations.push(`ACK ${version} reported ETag ${etag}, expected ${versionEtag(seed, Number(version))}`);
  }
  const newestAck = acked.length > 0 ? Math.max(...acked) : lastAcked;
  const store = await ObjectStore.open(root, { durability: "full" });
  const uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability: "full", minPartBytes: MPU_MIN_PART });
  let stored: number | null = null;
  try {
    try {
      const object = await store.open(MPU_BUCKET, MPU_KEY);
      const bytes = object.info.size > 0 ? await object.read({ start: 0, end: object.info.size - 1 }) : Buffer.alloc(0);
      // This generation's versions, or what an earlier one left (published, perhaps killed before its ACK).
      const candidates = [...new Set([...started, ...(prior.stored === null ? [] : [prior.stored])])];
      const match = candidates.find((v) => Buffer.concat(versionParts(seed, v)).equals(bytes));
      if (match === undefined) violations.push(`the object (${bytes.length} bytes) is no started version: partial or mixed`);
      else {
        stored = match;
        if (object.info.etag !== versionEtag(seed, match)) violations.push(`version ${match} has ETag ${object.info.etag}, expected ${versionEtag(seed, match)}`);
        if (newestAck !== null && match < newestAck) violations.push(`version ${match} is stored, but version ${newestAck} was acknowledged`);
      }
    } catch (err) {
      if (!(err instanceof StorageError && err.code === "NoSuchKey")) throw err;
      if (newestAck !== null) violations.push(`no object, but version ${newestAck} was acknowledged`);
    }
    const listing = await store.list(MPU_BUCKET, {});
    const keys = listing.objects.map((o) => o.key);
    if (keys.some((k) => k !== MPU_KEY)) violations.push(`unexpected objects in the bucket: ${keys.join(", ")}`);
    for (const tmp of [join(root, INTERNAL_DIR, "tmp"), join(root, INTERNAL_DIR, "uploads", INTERNAL_DIR, "tmp")]) {
      const leftovers = readdirSync(tmp).flatMap((dir) => readdirSync(join(tmp, dir)));
      if (leftovers.length > 0) violations.push(`temp files left in ${tmp}: ${leftovers.join(", ")}`);
    }
    // Uploads cut short stay until the janitor takes them; it must be able to.
    await uploads.reclaim(0, Date.now() + 1000);
    if ((await uploads.parts.listBuckets()).length > 0) violations.push("abandoned uploads could not be reclaimed");
  } finally {
    await uploads.close();
    await store.close();
  }
  return { stored, violations, lastAcked: newestAck };
}
