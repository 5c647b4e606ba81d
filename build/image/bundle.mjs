#!/usr/bin/env node
/**
 * The image's program: dist/src (compiled by tsc, the code the tests run) bundled by esbuild with what it
 * imports, instead of node_modules whole. Usage: node build/image/bundle.mjs <out-dir> [node-path]
 *
 * <out-dir> gets the tree that goes to /app in the image:
 *   package.json               name, version and "type": "module" (cli.ts reads its version from ../../package.json)
 *   dist/src/cli.js            the CLI; its commands stay lazily loaded chunks (code splitting)
 *   dist/src/lvpFileserver.js  LVP's sidecar entry; imports ./cli.js at run time, as unbundled
 *   dist/src/chunk-<hash>.js   code shared by the commands
 *   dist/src/pino-*.cjs        pino's transport workers (pretty logs on a terminal), found through
 *                              globalThis.__bundlerPathsOverrides (pino lib/transport.js, thread-stream index.js)
 *   node_modules/<pkg>         the two packages the hash worker require()s by resolved path at run time
 *                              (src/storage/hashPool.ts WORKER_MODULES), each bundled to one CommonJS file
 * Entries get `#!<node-path>` (default /usr/local/bin/node): the image has no /usr/bin/env.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const [outDir, nodePath = "/usr/local/bin/node"] = process.argv.slice(2);
if (!outDir) {
  process.stderr.write("usage: bundle.mjs <out-dir> [node-path]\n");
  process.exit(2);
}
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const srcOut = join(outDir, "dist/src");
rmSync(outDir, { recursive: true, force: true });

/** Settings every build shares: reproducible output (no absolute paths, no source maps, no timestamps). */
// The pinned Node.js major (versions.env NODE), which the image ships.
const nodeMajor = /^NODE=(\d+)\./m.exec(readFileSync("test/cluster/tools/versions.env", "utf8"))?.[1] ?? "26";
const common = { bundle: true, platform: "node", target: `node${nodeMajor}`, legalComments: "none", logLevel: "warning", absWorkingDir: process.cwd() };

// CommonJS packages inside an ESM bundle call require() for Node's built-ins; give every chunk one.
// The pino workers sit next to the chunks, so each chunk's own URL locates them.
const banner = [
  'import { createRequire as __createRequire } from "node:module";',
  "const require = __createRequire(import.meta.url);",
  "globalThis.__bundlerPathsOverrides ??= Object.fromEntries(",
  '  ["pino-worker", "thread-stream-worker", "pino-pretty"].map((name) => [name, new URL(`./${name}.cjs`, import.meta.url).pathname]),',
  ");",
].join("\n");

await build({
  ...common,
  entryPoints: ["dist/src/cli.js"],
  outdir: srcOut,
  format: "esm",
  splitting: true,
  chunkNames: "chunk-[hash]",
  banner: { js: banner },
});
// Only `import ... from "./cli.js"` stays external: bundled in, cli.js would see its own file run directly.
await build({ ...common, entryPoints: ["dist/src/lvpFileserver.js"], outdir: srcOut, format: "esm", external: ["./cli.js"] });
await build({
  ...common,
  entryPoints: {
    "pino-worker": "node_modules/pino/lib/worker.js",
    "thread-stream-worker": "node_modules/thread-stream/lib/worker.js",
    "pino-pretty": "node_modules/pino-pretty/index.js",
  },
  outdir: srcOut,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
});
for (const name of ["@aws-crypto/crc32c", "@aws-sdk/crc64-nvme"]) {
  const dir = join(outDir, "node_modules", name);
  await build({ ...common, entryPoints: [name], outfile: join(dir, "index.cjs"), format: "cjs" });
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name, main: "index.cjs" })}\n`);
}

for (const entry of ["cli.js", "lvpFileserver.js"]) {
  const file = join(srcOut, entry);
  writeFileSync(file, `#!${nodePath}\n${readFileSync(file, "utf8").replace(/^#!.*\n/, "")}`, { mode: 0o755 });
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "package.json"), `${JSON.stringify({ name: pkg.name, version: pkg.version, type: "module" }, null, 2)}\n`);
