import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createReview, fixturePod } from "../pods/support.js";

/*
 * Which modules a CLI call loads, recorded by a module loader hook (node --import): deterministic,
 * unlike timing. Every ESM import goes through the hook's load(), and so does each package a module
 * imports (express, pino and prom-client are CommonJS packages imported from ESM).
 */
const dir = mkdtempSync(join(tmpdir(), "cli-startup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, "hooks.mjs"),
  'import { appendFileSync } from "node:fs";\nlet file;\nexport function initialize(data) { file = data; }\nexport async function load(url, context, next) { appendFileSync(file, url + "\\n"); return next(url, context); }\n',
);
writeFileSync(
  join(dir, "register.mjs"),
  'import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url, { data: process.env.LOADED_MODULES_FILE });\n',
);

let runs = 0;
function loadedModules(args: string[], input?: string): { status: number | null; stderr: string; modules: string[] } {
  const file = join(dir, `loaded-${++runs}.txt`);
  writeFileSync(file, "");
  const result = spawnSync(process.execPath, ["--import", pathToFileURL(join(dir, "register.mjs")).href, "dist/src/cli.js", ...args], {
    input,
    encoding: "utf8",
    env: { ...process.env, LOADED_MODULES_FILE: file },
  });
  return { status: result.status, stderr: result.stderr, modules: readFileSync(file, "utf8").split("\n").filter(Boolean) };
}

/** The heavy libraries of the commands that serve or talk to a cluster. */
const SERVER_LIBRARIES = /\/node_modules\/(@kubernetes\/client-node|express|pino|prom-client|@smithy|fast-xml-parser)\//;

describe("CLI start-up", () => {
  it("explain loads neither the Kubernetes client nor the server libraries", () => {
    const run = loadedModules(["explain", "--state", "examples/policies.yaml", "-f", "examples/workloads.yaml"]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.modules.some((m) => m.endsWith("/dist/src/pods/decide.js"))).toBe(true);
    expect(run.modules.filter((m) => SERVER_LIBRARIES.test(m))).toEqual([]);
    expect(run.modules.filter((m) => /\/dist\/src\/commands\/(webhook|storage)\.js$/.test(m))).toEqual([]);
  });

  it("review loads neither the Kubernetes client nor the server libraries", () => {
    const run = loadedModules(["review", "--state", "examples/policies.yaml"], JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
    expect(run.status, run.stderr).toBe(0);
    expect(run.modules.some((m) => m.endsWith("/dist/src/admission/admit.js"))).toBe(true);
    expect(run.modules.filter((m) => SERVER_LIBRARIES.test(m))).toEqual([]);
  });

  it("the recorder sees packages: the webhook command loads its server libraries", () => {
    const run = loadedModules(["webhook", "--help"]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.modules.filter((m) => /\/node_modules\/(express|pino|prom-client)\//.test(m)).length).toBeGreaterThanOrEqual(3);
  });

  it("help still lists every command", () => {
    const run = spawnSync(process.execPath, ["dist/src/cli.js", "--help"], { encoding: "utf8" });
    for (const command of ["certs", "crds", "explain", "review", "storage", "webhook"]) expect(run.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
  });
});
