// Prints vitest's totals as one plain line ("tests: N passed, N failed, N skipped") that CI can read, also when
// vitest failed: a file that failed without a failing test in it (it did not import, or a hook threw) counts as
// one failure, and a run that wrote no results (vitest crashed) prints a failure instead of nothing.
import { readFileSync } from "node:fs";

function summarize(file) {
  let results;
  try {
    results = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    return { passed: 0, failed: 1, skipped: 0, failedFiles: [`(no results from vitest: ${err.code ?? err.message})`] };
  }
  const files = results.testResults ?? [];
  const failedFiles = files.filter((f) => f.status === "failed").map((f) => ({ name: f.name, failedTests: (f.assertionResults ?? []).filter((a) => a.status === "failed").length }));
  // Files that failed as a whole (their tests never ran or none failed) are failures the test counts miss.
  const wholeFileFailures = failedFiles.filter((f) => f.failedTests === 0).length;
  return {
    passed: results.numPassedTests ?? 0,
    failed: (results.numFailedTests ?? 0) + wholeFileFailures,
    skipped: (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0),
    failedFiles: failedFiles.map((f) => `${f.name}${f.failedTests === 0 ? " (failed as a whole: import or hook error)" : ""}`),
  };
}

const summary = summarize(process.argv[2]);
for (const name of summary.failedFiles) console.log(`failed file: ${name}`);
console.log(`tests: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
process.exit(summary.failed > 0 || summary.passed === 0 ? 1 : 0);
