// Prints vitest's totals as one plain line ("tests: N passed, N failed, N skipped") that CI can read.
import { readFileSync } from "node:fs";

const results = JSON.parse(readFileSync(process.argv[2], "utf8"));
const skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
console.log(`tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`);
process.exit(results.numFailedTests > 0 || results.numPassedTests === 0 ? 1 : 0);
