import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { pinnedVersions, repoRoot } from "../../cluster/binaries.js";

// The Makefile runs every target on the Node.js and npm pinned in versions.env (.cache/node-$NODE/bin leads
// PATH). These fail when a make target, or CI, runs the suite on any other Node.js.
const { NODE, NPM } = pinnedVersions();
const major = NODE?.split(".")[0];
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

describe("the pinned Node.js", () => {
  it("runs this test process", () => {
    expect(NODE).toMatch(/^\d+\.\d+\.\d+$/);
    expect(process.version).toBe(`v${NODE}`);
  });

  it("is the node and npm that child processes find on PATH", () => {
    expect(execFileSync("node", ["--version"], { encoding: "utf8" }).trim()).toBe(`v${NODE}`);
    expect(execFileSync("npm", ["--version"], { encoding: "utf8" }).trim()).toBe(NPM);
  });

  it("is the major package.json's engines and @types/node name", () => {
    expect(pkg.engines.node).toBe(`>=${major}`);
    expect(pkg.devDependencies["@types/node"]?.split(".")[0]).toBe(major);
  });
});
