import type { S3Error } from "./errors.js";
import type { XmlNode } from "./xml.js";

/** The children of an S3 `<Error>` document. */
export function errorElements(error: S3Error, where: { bucket?: string; key?: string; resource: string }, requestId: string): XmlNode[] {
  return [
    ["Code", error.code],
    ["Message", error.message],
    ...Object.entries(error.extra).map(([name, value]): XmlNode => [name, value]),
    ["BucketName", where.bucket || undefined],
    ["Key", where.key || undefined],
    ["Resource", where.resource],
    ["RequestId", requestId],
    ["HostId", requestId],
  ];
}
