import { S3Error } from "./errors.js";
import { MAX_PART_NUMBER } from "./multipart.js";

/**
 * GET/HEAD `?partNumber=N`: the bytes of part N of a multipart object (S3 answers 206 with
 * Content-Range and x-amz-mp-parts-count). An object uploaded in one piece has one part, itself.
 * A part number past the last part is 416 InvalidPartNumber.
 */
export function partRange(text: string, partSizes: readonly number[] | undefined, size: number): { start: number; end: number; count: number } {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PART_NUMBER) {
    throw new S3Error("InvalidArgument", `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
  }
  const n = Number(text);
  const sizes = partSizes ?? [size];
  if (n > sizes.length) throw new S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", { PartNumberRequested: String(n), ActualPartCount: String(sizes.length) });
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += sizes[i]!;
  return { start, end: start + sizes[n - 1]! - 1, count: sizes.length };
}
