import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, found from this file whether it runs from source or from dist/. */
export const repoRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json")) || !existsSync(path.join(dir, "test", "cluster", "tools", "versions.env"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("cannot find the app-snapshots repository root");
    dir = parent;
  }
  return dir;
})();

export const cacheDir = process.env.APP_SNAPSHOTS_CACHE ?? path.join(repoRoot, ".cache");

/** versions.env is the single place that pins upstream versions; the Makefile and the harness both read it. */
export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(path.join(repoRoot, "test", "cluster", "tools", "versions.env"), "utf8");
  const versions: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (match) versions[match[1]!] = match[2]!;
  }
  return versions;
}

const versionKey = { "kube-apiserver": "KUBERNETES", kubectl: "KUBERNETES", etcd: "ETCD", helm: "HELM" } as const;
export type Tool = keyof typeof versionKey;

/** Path of a cached, version-named binary; fails loudly with the command that builds it. */
export function toolPath(tool: Tool): string {
  const version = pinnedVersions()[versionKey[tool]];
  const file = path.join(cacheDir, "bin", `${tool}-${version}`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'make tools' (it builds ${tool} ${version} from the Go module proxy)`);
  return file;
}

/** The Velero CRD YAML files, copied out of the Go module cache by `make tools`. */
export function veleroCrdDir(): string {
  const dir = path.join(cacheDir, "crds", `velero-${pinnedVersions().VELERO}`);
  if (!existsSync(dir)) throw new Error(`${dir} is missing: run 'make tools'`);
  return dir;
}

/**
 * test/cluster/tools/fakenode, built by `make velero` as fake-node-<kubernetes>-<hash of its sources>
 * (its *.go files in byte order, concatenated), so an edited source is never run from a stale binary.
 */
export function fakeNodePath(): string {
  const dir = path.join(repoRoot, "test", "cluster", "tools", "fakenode");
  const hash = createHash("sha256");
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".go")).sort()) hash.update(readFileSync(path.join(dir, name)));
  const digest = hash.digest("hex").slice(0, 12);
  const file = path.join(cacheDir, "bin", `fake-node-${pinnedVersions().KUBERNETES}-${digest}`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'make velero' (it builds test/cluster/tools/fakenode)`);
  return file;
}

/** The Velero binary and the folder holding only velero-plugin-for-aws, both built by `make velero`. */
export function veleroPaths(): { velero: string; pluginDir: string; version: string; awsPlugin: string } {
  const versions = pinnedVersions();
  const velero = path.join(cacheDir, "bin", `velero-${versions.VELERO}`);
  const pluginDir = path.join(cacheDir, `velero-plugins-${versions.VELERO_AWS_PLUGIN}`);
  for (const file of [velero, path.join(pluginDir, "velero-plugin-for-aws")]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run 'make velero' (it builds Velero ${versions.VELERO} and velero-plugin-for-aws ${versions.VELERO_AWS_PLUGIN})`);
  }
  return { velero, pluginDir, version: versions.VELERO!, awsPlugin: versions.VELERO_AWS_PLUGIN! };
}
