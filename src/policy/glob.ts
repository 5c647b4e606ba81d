/**
 * Shell-style globs on volume names (`*` any run, `?` one UTF-16 unit, everything else literal),
 * matched without regular expressions: a policy author must not be able to stall the event loop
 * that serves every admission (a backtracking regex took 20 s+ on `*a*a*a*a*a*a*b`).
 *
 * The pattern is split on `*` into segments (literals and `?`). The first segment is anchored at
 * the start, the last at the end, and each middle segment is matched at its leftmost occurrence
 * after the previous one; leftmost is always safe because a later `*` can absorb whatever an
 * earlier choice leaves. Each segment is found with the bit-parallel Shift-And search, which
 * handles `?` as a class of every character. Cost: O((n + m) · ⌈s / 32⌉) for a name of length n,
 * a pattern of length m and its longest segment s, since every name position is scanned by one
 * segment search only. Policies bound m (crd.ts), so this is linear in n.
 */

/** Optional instrumentation for tests: the number of name positions examined. */
export interface GlobStats {
  steps: number;
}

interface Segment {
  length: number;
  /** Bit i (word i >> 5) set in masks[c] when position i of the segment accepts character c. */
  masks: Map<number, Uint32Array>;
  /** The mask for characters the segment names nowhere: only its `?` positions accept them. */
  anyMask: Uint32Array;
  words: number;
}

interface CompiledGlob {
  segments: Segment[];
  /** False when the pattern has no `*`: the single segment must equal the whole name. */
  hasStar: boolean;
}

function compileSegment(text: string): Segment {
  const words = Math.max(1, Math.ceil(text.length / 32));
  const anyMask = new Uint32Array(words);
  for (let i = 0; i < text.length; i++) if (text[i] === "?") anyMask[i >> 5]! |= 1 << (i & 31);
  const masks = new Map<number, Uint32Array>();
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "?") continue;
    const code = text.charCodeAt(i);
    let mask = masks.get(code);
    if (!mask) {
      mask = Uint32Array.from(anyMask);
      masks.set(code, mask);
    }
    mask[i >> 5]! |= 1 << (i & 31);
  }
  return { length: text.length, masks, anyMask, words };
}

const cache = new Map<string, CompiledGlob>();

function compile(pattern: string): CompiledGlob {
  const cached = cache.get(pattern);
  if (cached) return cached;
  if (cache.size > 10_000) cache.clear();
  const compiled = { segments: pattern.split("*").map(compileSegment), hasStar: pattern.includes("*") };
  cache.set(pattern, compiled);
  return compiled;
}

/** Does the segment match the name at exactly `at`? O(segment length). */
function matchesAt(segment: Segment, name: string, at: number, stats: GlobStats | undefined): boolean {
  if (at < 0 || at + segment.length > name.length) return false;
  for (let i = 0; i < segment.length; i++) {
    if (stats) stats.steps++;
    const mask = segment.masks.get(name.charCodeAt(at + i)) ?? segment.anyMask;
    if ((mask[i >> 5]! & (1 << (i & 31))) === 0) return false;
  }
  return true;
}

/**
 * The end (exclusive) of the leftmost occurrence of the segment in name[from, limit), or -1.
 * Shift-And: bit i of `state` says "the segment's first i+1 characters end here".
 */
function findFrom(segment: Segment, name: string, from: number, limit: number, stats: GlobStats | undefined): number {
  const { length, words } = segment;
  if (length === 0) return from;
  const state = new Uint32Array(words);
  const last = length - 1;
  for (let pos = from; pos < limit; pos++) {
    if (stats) stats.steps++;
    const mask = segment.masks.get(name.charCodeAt(pos)) ?? segment.anyMask;
    // state = ((state << 1) | 1) & mask, across words.
    let carry = 1;
    for (let w = 0; w < words; w++) {
      const word = state[w]!;
      state[w] = ((word << 1) | carry) & mask[w]!;
      carry = word >>> 31;
    }
    if ((state[last >> 5]! & (1 << (last & 31))) !== 0) return pos + 1;
  }
  return -1;
}

/** Does `name` match the glob `pattern`? Linear in the name for a bounded pattern (see above). */
export function globMatches(pattern: string, name: string, stats?: GlobStats): boolean {
  const { segments, hasStar } = compile(pattern);
  if (!hasStar) return segments[0]!.length === name.length && matchesAt(segments[0]!, name, 0, stats);
  const first = segments[0]!;
  const final = segments[segments.length - 1]!;
  // Anchor both ends first; the middle segments must fit between them.
  if (first.length + final.length > name.length) return false;
  if (!matchesAt(first, name, 0, stats) || !matchesAt(final, name, name.length - final.length, stats)) return false;
  let pos = first.length;
  const limit = name.length - final.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const end = findFrom(segments[i]!, name, pos, limit, stats);
    if (end < 0) return false;
    pos = end;
  }
  return true;
}

/** How many `*` a pattern may hold; with the length bound this caps a policy's matching cost. */
export const MAX_GLOB_STARS = 8;
/** Longest pattern a policy may use (volume names are DNS labels of at most 63 characters). */
export const MAX_GLOB_LENGTH = 128;
