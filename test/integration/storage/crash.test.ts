import { describe, expect, it } from "vitest";
import { runTrials, writerScript } from "../../storage/crashTrial.js";

const TRIALS = 200;

describe("object store crash safety", () => {
  it(`survives ${TRIALS} SIGKILLs of a writer at random moments: no partial object, no lost acknowledged write, no temp files`, async () => {
    writerScript(); // fails fast when dist/ is missing or stale
    // A new seed prefix per run explores new operation sequences and kill delays; violations name their seed.
    const seedPrefix = `crash-${Date.now().toString(36)}`;
    // Evidence, not a rate: enough kills mid-write and enough acknowledged operations, however loaded the
    // machine (more trials run until they are there, within a generous bound).
    const enough = (s: { killedMidPut: number; acknowledged: number }) => s.killedMidPut >= TRIALS / 4 && s.acknowledged > TRIALS;
    const summary = await runTrials(TRIALS, { concurrency: 2, seedPrefix, enough, maxCount: TRIALS * 3 });
    console.log(
      `crash test (seeds ${seedPrefix}-<n>): ${summary.trials} trials, ${summary.acknowledged} acknowledged writes/deletes, ` +
        `${summary.killedMidPut} kills mid-write (${((100 * summary.killedMidPut) / summary.kills).toFixed(1)}%), ${summary.killedMidDelete} mid-delete, ` +
        `${summary.violations.length} violations, ${(summary.elapsedMs / 1000).toFixed(1)} s`,
    );
    expect(summary.violations.slice(0, 20)).toEqual([]);
    expect(summary.trials).toBeGreaterThanOrEqual(TRIALS);
    // Otherwise the kills hit start-up or the gaps between writes, and the test proves little.
    expect(enough(summary), `${summary.killedMidPut} kills mid-write, ${summary.acknowledged} acknowledged in ${summary.trials} trials`).toBe(true);
  }, 600_000);
});
