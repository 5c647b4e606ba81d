import { decidePod } from "../pods/decide.js";
import type { Pod } from "../pods/pod.js";
import type { VolumeVerdict } from "../pods/volumeVerdict.js";
import type { ClusterState } from "../admission/state.js";

export interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: Record<string, unknown>;
}

/** What app-snapshots does to the pods of one workload: `explain -o json` prints it, the text view renders it. */
export interface WorkloadReport {
  kind: string;
  namespace: string;
  name: string;
  /** Why app-snapshots leaves the pod alone entirely, or null. */
  skipped: string | null;
  /** The policy applied (as written to appsnapshots.io/policy), or null when none matches. */
  policy: string | null;
  /** Annotations added or changed; `was` is the manifest's own value when it had one. */
  annotationsSet: Array<{ key: string; value: string; was?: string }>;
  /** Annotations of the manifest that the pod no longer carries. */
  annotationsRemoved: string[];
  /** Velero annotations of the manifest kept as written. */
  annotationsKept: Record<string, string>;
  /** Init container names before and after admission, and those added or modified (a restore hook, restore-wait's user). */
  initContainers: { before: string[]; after: string[]; changed: string[] };
  /** The full warning texts (the webhook sends them prefixed, and shortened to the apiserver's limits). */
  warnings: string[];
  /** What Velero does with each volume in its opt-in and opt-out modes. */
  volumes: VolumeVerdict[];
}

/** The pod a manifest creates: the Pod itself, or a workload's pod template; undefined for other kinds. */
export function podOf(manifest: Manifest): Pod | undefined {
  const fromTemplate = (template: unknown): Pod | undefined => {
    const t = template as { metadata?: Pod["metadata"]; spec?: Pod["spec"] } | undefined;
    return t?.spec ? { apiVersion: "v1", kind: "Pod", metadata: { ...(t.metadata ?? {}) }, spec: t.spec } : undefined;
  };
  switch (manifest.kind) {
    case "Pod":
      return manifest as Pod;
    case "StatefulSet": {
      // The StatefulSet controller adds a PVC volume per volumeClaimTemplate to each pod.
      const pod = fromTemplate(manifest.spec?.template);
      const claims = (manifest.spec?.volumeClaimTemplates as Array<{ metadata?: { name?: string } }> | undefined) ?? [];
      if (pod?.spec) {
        const volumes = [...(pod.spec.volumes ?? [])];
        for (const claim of claims) {
          const name = claim.metadata?.name;
          if (name && !volumes.some((v) => v.name === name)) {
            volumes.push({ name, persistentVolumeClaim: { claimName: `${name}-${manifest.metadata?.name ?? "sts"}-0` } });
          }
        }
        pod.spec = { ...pod.spec, volumes };
      }
      return pod;
    }
    case "Deployment":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
    case "ReplicationController":
      return fromTemplate(manifest.spec?.template);
    case "CronJob":
      return fromTemplate((manifest.spec?.jobTemplate as { spec?: { template?: unknown } } | undefined)?.spec?.template);
    default:
      return undefined;
  }
}

/** "Kind namespace/name", as messages name an object; `helm template` output often has no namespace. */
export function objectTitle(manifest: Manifest, defaultNamespace: string): string {
  return `${manifest.kind ?? "object"} ${manifest.metadata?.namespace ?? defaultNamespace}/${manifest.metadata?.name ?? "(unnamed)"}`;
}

/** The report for a workload manifest, or undefined when it creates no pods. */
export function workloadReport(manifest: Manifest, state: ClusterState, defaultNamespace: string): WorkloadReport | undefined {
  const pod = podOf(manifest);
  if (!pod) return undefined;
  const namespace = manifest.metadata?.namespace ?? defaultNamespace;
  const decision = decidePod(pod, namespace, state);
  const before = pod.metadata?.annotations ?? {};
  const after = decision.pod.metadata?.annotations ?? {};
  const initBefore = pod.spec?.initContainers ?? [];
  const initAfter = decision.pod.spec?.initContainers ?? [];
  const sameAsBefore = (c: (typeof initAfter)[number]) => JSON.stringify(initBefore.find((b) => b.name === c.name)) === JSON.stringify(c);
  return {
    kind: manifest.kind ?? "Pod",
    namespace,
    name: manifest.metadata?.name ?? "(unnamed)",
    skipped: decision.skipped ?? null,
    policy: decision.policy ?? null,
    annotationsSet: Object.entries(after)
      .filter(([key, value]) => before[key] !== value)
      .map(([key, value]) => (before[key] === undefined ? { key, value } : { key, value, was: before[key] })),
    annotationsRemoved: Object.keys(before).filter((key) => after[key] === undefined),
    annotationsKept: Object.fromEntries(Object.entries(before).filter(([key, value]) => /velero\.io\//.test(key) && after[key] === value)),
    initContainers: {
      before: initBefore.map((c) => c.name),
      after: initAfter.map((c) => c.name),
      changed: initAfter.filter((c) => !sameAsBefore(c)).map((c) => c.name),
    },
    warnings: decision.warnings,
    volumes: decision.volumes,
  };
}
