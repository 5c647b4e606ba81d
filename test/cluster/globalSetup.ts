import type { TestProject } from "vitest/node";
import { startControlPlane } from "./controlPlane.js";
import { installAppSnapshotsCrds, installVeleroCrds } from "./crds.js";

declare module "vitest" {
  export interface ProvidedContext {
    cluster: { url: string; dir: string; kubeconfigPath: string };
  }
}

/** One control plane per integration run, with the Velero CRDs installed; torn down after the last test. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const plane = await startControlPlane({ log: (line) => console.log(`[cluster] ${line}`) });
  try {
    const crds = await installVeleroCrds(plane.kubeConfig);
    const ours = await installAppSnapshotsCrds(plane.kubeConfig);
    console.log(`[cluster] installed ${crds.length} Velero CRDs and ${ours.length} app-snapshots CRDs`);
  } catch (err) {
    await plane.stop();
    throw err;
  }
  project.provide("cluster", { url: plane.url, dir: plane.dir, kubeconfigPath: plane.kubeconfigPath });
  return () => plane.stop();
}
