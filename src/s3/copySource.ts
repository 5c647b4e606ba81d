import { S3Error } from "./errors.js";

/** `x-amz-copy-source`: `[/]<bucket>/<url-encoded key>[?versionId=null]`. */
export function parseCopySource(header: string): { bucket: string; key: string } {
  let text: string;
  try {
    text = decodeURIComponent(header.split("?")[0]!);
  } catch {
    throw new S3Error("InvalidArgument", "x-amz-copy-source has malformed percent-encoding");
  }
  if (header.includes("?versionId=") && !header.includes("?versionId=null")) throw new S3Error("NotImplemented", "copying a specific version is not supported");
  const match = /^\/?([^/]+)\/(.+)$/s.exec(text);
  if (!match) throw new S3Error("InvalidArgument", "x-amz-copy-source must be /<bucket>/<key>");
  return { bucket: match[1]!, key: match[2]! };
}

const RANGE_FORM = "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy";

/**
 * UploadPartCopy's `x-amz-copy-source-range` against the source's size: the whole source when absent.
 * S3 accepts only `bytes=first-last` (no suffix or open ranges): anything else is InvalidArgument; a range
 * past the end of the source is InvalidRange.
 */
export function copySourceRange(header: string | undefined, size: number): { start: number; end: number } {
  if (header === undefined) return { start: 0, end: size - 1 };
  const match = /^bytes=(\d{1,16})-(\d{1,16})$/.exec(header.trim());
  if (!match) throw new S3Error("InvalidArgument", RANGE_FORM);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) throw new S3Error("InvalidArgument", RANGE_FORM);
  if (end >= size) throw new S3Error("InvalidRange", `The requested range is not satisfiable: the source object is ${size} bytes`, { ActualObjectSize: String(size) });
  return { start, end };
}
