import { parseGoDuration } from "../velero/duration.js";

/** A repeatable commander option: each use appends to the list. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** A Go duration flag (the format Velero and kubectl use) in milliseconds, with an error naming the flag. */
export function durationMs(text: string, flag: string): number {
  const ns = parseGoDuration(text);
  if (ns === undefined || ns < 0) throw new Error(`${flag} "${text}" is not a Go duration like 2m`);
  return ns / 1e6;
}
