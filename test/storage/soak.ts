/**
 * Crash soak: node dist/test/storage/soak.js [trials=1000] [concurrency=2] [generations=1] [seedPrefix]
 *
 * Runs the crash trial of test/integration/storage/crash.test.ts many times (each: a writer child
 * on a fresh root, SIGKILL at a random moment, restart, check). Prints progress, a summary and
 * every violation; exits 1 if there was any, or if too few kills landed in the middle of a write.
 */
import { runTrials } from "./crashTrial.js";

async function main(args: string[]): Promise<number> {
  const trials = Number(args[0] ?? 1000);
  const concurrency = Number(args[1] ?? 2);
  const generations = Number(args[2] ?? 1);
  const seedPrefix = args[3] ?? `soak-${Date.now().toString(36)}`;
  if (![trials, concurrency, generations].every((n) => Number.isSafeInteger(n) && n > 0)) {
    console.error("usage: soak.js [trials=1000] [concurrency=2] [generations=1] [seedPrefix]");
    return 2;
  }
  console.log(`crash soak: ${trials} trials, ${concurrency} at a time, ${generations} kill(s) per root, seeds ${seedPrefix}-<n>`);
  let reported = 0;
  const summary = await runTrials(trials, {
    concurrency,
    generations,
    seedPrefix,
    onTrial: (result) => {
      for (const v of result.violations) console.log(`VIOLATION ${v}`);
      if (++reported % 100 === 0) console.log(`  ${reported}/${trials} trials`);
    },
  });
  const midShare = summary.killedMidPut / summary.kills;
  console.log(
    `crash soak: ${summary.trials} trials, ${summary.kills} kills, ${summary.acknowledged} acknowledged operations, ` +
      `${summary.killedMidPut} kills mid-put (${(100 * midShare).toFixed(1)}%), ${summary.killedMidDelete} mid-delete, ${summary.violations.length} violations, ` +
      `${(summary.elapsedMs / 1000).toFixed(1)} s`,
  );
  if (summary.violations.length > 0) return 1;
  if (midShare <= 0.5) {
    console.log("FAIL: at most half of the kills landed in the middle of a put; the soak proves too little");
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
