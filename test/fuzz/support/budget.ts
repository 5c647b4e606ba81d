import fc from "fast-check";

/**
 * How long each fuzz file runs: FUZZ_SECONDS (default 10, what `make test` spends; `make fuzz` sets
 * 300), shared among the fuzzers of the file. FUZZ_SEED replays a run fast-check reported.
 */
export function fileBudgetSeconds(): number {
  const seconds = Number(process.env.FUZZ_SECONDS ?? "10");
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`FUZZ_SECONDS must be a positive number of seconds, not ${process.env.FUZZ_SECONDS}`);
  return seconds;
}

/** The vitest timeout for a fuzzer given `seconds`: its budget plus time to shrink a failure and clean up. */
export const fuzzTimeoutMs = (seconds: number) => seconds * 1000 + 120_000;

export interface FuzzStats {
  name: string;
  inputs: number;
  seconds: number;
}

/**
 * Runs `check` on inputs from `arbitrary` until `seconds` have passed; a thrown error (a broken
 * oracle) fails with fast-check's shrunk counterexample and seed. Prints inputs tried and time.
 */
export async function fuzz<T>(name: string, seconds: number, arbitrary: fc.Arbitrary<T>, check: (input: T) => Promise<void>): Promise<FuzzStats> {
  let inputs = 0;
  const started = performance.now();
  const stats = (): FuzzStats => ({ name, inputs, seconds: Math.round((performance.now() - started) / 100) / 10 });
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (input) => {
        inputs++;
        await check(input);
      }),
      { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, ...(seed === undefined ? {} : { seed }) },
    );
  } finally {
    const { inputs: tried, seconds: took } = stats();
    console.log(`fuzz ${name}: ${tried} inputs in ${took} s`);
  }
  return stats();
}
