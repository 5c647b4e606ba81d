/** Levenshtein distance (insert, delete, substitute; each 1). Inputs are short config keys and provider names. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate a misspelt word most likely meant: the same word ignoring case, or the closest one
 * within `maxDistance` edits (ties go to the earlier candidate); undefined when none is close.
 */
export function nearest(word: string, candidates: readonly string[], maxDistance: number): string | undefined {
  const sameIgnoringCase = candidates.find((c) => c.toLowerCase() === word.toLowerCase());
  if (sameIgnoringCase) return sameIgnoringCase;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= maxDistance && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}
