// Whether the real node's suites run: in CI always, so a machine without root, runc or cgroups fails each suite
// with preflight's reasons; elsewhere they are skipped with those reasons printed.
import { preflight } from "../cluster/node/tools.js";

const reasons = preflight();
const inCI = Boolean(process.env.CI) && process.env.CI !== "false";

/** true: skip this file's suites (the reasons are printed once per file). */
export const withoutNode: boolean = reasons.length > 0 && !inCI;

if (withoutNode) console.warn(`skipped: the real node cannot start here (in CI this fails):\n- ${reasons.join("\n- ")}`);
