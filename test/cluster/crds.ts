import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { applyObjects, parseManifests, waitForCrdsEstablished } from "../../src/kube/apply.js";
import { repoRoot, veleroCrdDir } from "./binaries.js";

/** Applies every CRD in the given YAML files and waits until they are served. Returns the CRD names. */
export async function installCrdFiles(kc: KubeConfig, files: string[]): Promise<string[]> {
  return installCrds(kc, files.flatMap((file) => parseManifests(readFileSync(file, "utf8"), file)));
}

/** Applies the CRDs among `objects` (others are ignored) and waits until they are served. Returns their names. */
export async function installCrds(kc: KubeConfig, objects: KubernetesObject[]): Promise<string[]> {
  const crds = objects.filter((o) => o.kind === "CustomResourceDefinition");
  await applyObjects(kc, crds);
  const names = crds.map((crd) => crd.metadata!.name!);
  await waitForCrdsEstablished(kc, names);
  return names;
}

/** The upstream Velero CRDs at the pinned Velero version. */
export async function installVeleroCrds(kc: KubeConfig): Promise<string[]> {
  const dir = veleroCrdDir();
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(dir, name));
  return installCrdFiles(kc, files);
}

/** app-snapshots' own CRDs, from the chart (the files `make crds` writes). */
export async function installAppSnapshotsCrds(kc: KubeConfig): Promise<string[]> {
  const dir = path.join(repoRoot, "chart", "app-snapshots", "crds");
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(dir, name));
  return installCrdFiles(kc, files);
}
