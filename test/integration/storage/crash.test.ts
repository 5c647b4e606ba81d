import { describe, expect, it } from "vitest";
import { runTrials, writerScript } from "../../storage/crashTrial.js";

const TRIALS = 200;

describe("object store crash safety", () => {
  it(`survives ${TRIALS} SIGKILLs of a writer at random moments: no partial object, no lost acknowledged write, no temp files`, async () => {
    writerScript(); // fails fast when dist/ is missing or stale
    // A new seed prefix per run explores new operation sequences and kill delays; violations name their seed.
    const seedPrefix = `crash-${Date.now().toString(36)}`;
    const summary = await runTrials(TRIALS, { concurrency: 2, seedPrefix });
    console.log(
      `crash test (seeds ${seedPrefix}-<n>): ${summary.trials} trials, ${summary.acknowledged} acknowledged writes/deletes, ` +
        `${summary.killedMidPut} kills mid-write (${((100 * summary.killedMidPut) / summary.kills).toFixed(1)}%), ${summary.killedMidDelete} mid-delete, ` +
        `${summary.violations.length} violations, ${(summary.elapsedMs / 1000).toFixed(1)} s`,
    );
    expect(summary.violations.slice(0, 20)).toEqual([]);
    expect(summary.trials).toBe(TRIALS);
    // Otherwise the kills hit start-up or the gaps between writes, and the test proves little.
    expect(summary.killedMidPut).toBeGreaterThan(summary.kills / 2);
    expect(summary.acknowledged).toBeGreaterThan(TRIALS);
  }, 240_000);
});
