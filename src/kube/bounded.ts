/**
 * A lookup made while the apiserver waits for our admission answer: its answer, or undefined when it failed or took
 * longer than `timeoutMs` (the typed client takes no abort signal, so a late lookup is abandoned, not cancelled).
 * The apiserver fails the admission closed at its own timeout, so a slow lookup must count as unknown instead.
 */
export async function bounded<T>(lookup: Promise<T>, timeoutMs: number, onFailed: (err: unknown) => void): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([lookup, deadline]);
  } catch (err) {
    onFailed(err);
    return undefined;
  } finally {
    clearTimeout(timer);
    lookup.catch(() => undefined);
  }
}
