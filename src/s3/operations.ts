import { BUCKET_HANDLERS } from "./handlers/bucketHandlers.js";
import type { Handler } from "./handlers/context.js";
import { LISTING_HANDLERS } from "./handlers/listingHandlers.js";
import { MULTIPART_HANDLERS } from "./handlers/multipartHandlers.js";
import { OBJECT_HANDLERS } from "./handlers/objectHandlers.js";
import type { Operation } from "./routing.js";

export type { RequestContext } from "./handlers/context.js";

/**
 * Every operation and its handler, by resource: buckets, listings, objects, multipart uploads
 * (as minio's cmd/*-handlers.go). Handlers decide with the pure functions beside them
 * (preconditions, copy source ranges, part ranges, checksums) and act through the S3Backend.
 */
export const OPERATIONS: Record<Operation, Handler> = {
  ...BUCKET_HANDLERS,
  ...LISTING_HANDLERS,
  ...OBJECT_HANDLERS,
  ...MULTIPART_HANDLERS,
};
