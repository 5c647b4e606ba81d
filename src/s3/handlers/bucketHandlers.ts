import { S3Error } from "../errors.js";
import { param } from "../routing.js";
import { escapeXml, parseXml, S3_NAMESPACE, textOf, type XmlNode } from "../xml.js";
import { refuseNonPrivateAcl } from "./objectHeaders.js";
import { OWNER, readSmallBody, requireBucket, sendRaw, sendXml, type Handler, type RequestContext } from "./context.js";

/** S3 ListBuckets: max-buckets is 1 to 10,000. */
const MAX_BUCKETS = 10_000;

export const BUCKET_HANDLERS = {
  ListBuckets: async (c) => {
    const q = c.route.query;
    const buckets = await c.options.backend.listBuckets();
    const page = pageOfBuckets(
      buckets.map((b) => b.name),
      { maxBuckets: param(q, "max-buckets"), continuationToken: param(q, "continuation-token"), prefix: param(q, "prefix") },
    );
    const created = new Map(buckets.map((b) => [b.name, b.created]));
    sendXml(c, 200, "ListAllMyBucketsResult", [
      OWNER,
      ["Buckets", page.names.map((n): XmlNode => ["Bucket", [["Name", n], ["CreationDate", created.get(n)!.toISOString()]]])],
      ["ContinuationToken", page.nextToken],
      ["Prefix", param(q, "prefix")],
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
    refuseNonPrivateAcl(c);
    const body = await readSmallBody(c);
    if (body.length > 0) checkLocationConstraint(textOf(parseXml(body, "CreateBucketConfiguration"), "LocationConstraint"), c.options.region);
    await c.options.backend.createBucket(c.route.bucket);
    c.res.setHeader("location", `/${c.route.bucket}`);
    c.res.end();
  },

  DeleteBucket: async (c) => {
    refuseBucketChanges(c);
    // The backend aborts the bucket's unfinished uploads with it.
    await c.options.backend.deleteBucket(c.route.bucket);
    c.res.statusCode = 204;
    c.res.end();
  },
} satisfies Record<string, Handler>;

function refuseBucketChanges(c: RequestContext): void {
  if (!c.options.allowBucketChanges) {
    throw new S3Error("AccessDenied", "creating and deleting buckets is disabled on this server (started with --no-bucket-changes); an admin creates bucket folders");
  }
}

/**
 * S3 CreateBucket: a LocationConstraint that is not a region name is InvalidLocationConstraint; one that
 * names another region than the endpoint's is IllegalLocationConstraintException. An empty one, or ours, is fine.
 */
export function checkLocationConstraint(constraint: string | undefined, region: string): void {
  const wanted = constraint?.trim() ?? "";
  const ours = region || "us-east-1";
  if (wanted === "" || wanted === ours) return;
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(wanted)) throw new S3Error("InvalidLocationConstraint", "The specified location-constraint is not valid");
  throw new S3Error("IllegalLocationConstraintException", `The ${wanted.slice(0, 40)} location constraint is incompatible for the region specific endpoint this request was sent to (${ours}).`);
}

/**
 * One page of ListBuckets (names already sorted): `prefix`, `continuation-token` (the last name of the
 * previous page, base64url) and `max-buckets` (1-10,000; without it every bucket, as S3 does).
 */
export function pageOfBuckets(
  names: readonly string[],
  query: { maxBuckets?: string; continuationToken?: string; prefix?: string },
): { names: string[]; nextToken?: string } {
  let max = Infinity;
  if (query.maxBuckets !== undefined) {
    if (!/^\d{1,5}$/.test(query.maxBuckets) || Number(query.maxBuckets) < 1 || Number(query.maxBuckets) > MAX_BUCKETS) {
      throw new S3Error("InvalidArgument", `max-buckets must be an integer between 1 and ${MAX_BUCKETS}`);
    }
    max = Number(query.maxBuckets);
  }
  let after = "";
  if (query.continuationToken !== undefined && query.continuationToken !== "") {
    after = Buffer.from(query.continuationToken, "base64url").toString("utf8");
    if (Buffer.from(after).toString("base64url") !== query.continuationToken) throw new S3Error("InvalidArgument", "The continuation token provided is incorrect");
  }
  const prefix = query.prefix ?? "";
  const matching = names.filter((n) => n.startsWith(prefix) && n > after);
  const page = matching.slice(0, max);
  return { names: page, ...(matching.length > page.length ? { nextToken: Buffer.from(page.at(-1)!).toString("base64url") } : {}) };
}
