/** The outcome of an HTTP `Range` header against an object of known size (RFC 9110 section 14). */
export type RangeDecision =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

/**
 * One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`. Headers we do not understand (other
 * units, several ranges, bad syntax) are ignored and the whole object is served, as RFC 9110 allows
 * and as S3 does; a well-formed range that starts past the end is unsatisfiable (416).
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: "full" };
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return { kind: "full" };
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return { kind: "full" };
  if (first === "") {
    // Suffix range: the last n bytes.
    const length = Number(last);
    if (length === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? Infinity : Number(last);
  // An invalid range (last < first, or numbers too big to be exact) is ignored, not refused.
  if (!Number.isSafeInteger(start) || (last !== "" && (!Number.isSafeInteger(end) || end < start))) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
