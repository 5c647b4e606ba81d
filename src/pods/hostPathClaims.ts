// Velero's file-system backup skips a claim whose PersistentVolume is hostPath (pkg/podvolume/backupper.go,
// isHostPathVolume: node-agent cannot reach data outside the kubelet's pods folder), and says so only in its log.
// Common single-node provisioners make exactly such volumes: k3s's and kind's default local-path, MicroK8s,
// minikube, Docker Desktop. So a policy that selects such a claim backs up nothing, and the pod admission says so.
import { BACKUP_VOLUMES, splitVolumeList } from "../velero/annotations.js";
import type { PodVolume } from "./volumes.js";

/** Provisioners whose PersistentVolumes are hostPath (by default, for local-path). */
export const HOSTPATH_PROVISIONERS = ["rancher.io/local-path", "microk8s.io/hostpath", "k8s.io/minikube-hostpath", "docker.io/hostpath", "kubernetes.io/host-path"] as const;

/** The StorageClass that provisions claims naming none (the DefaultStorageClass admission plugin's annotation). */
export const DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class";

export interface ClaimFacts {
  /** The bound PersistentVolume, if the claim is bound and it could be read. */
  volume?: { name?: string; hostPath?: boolean };
  /** The claim's StorageClass and its provisioner, if it names one that could be read. */
  storageClass?: { name?: string; provisioner?: string };
}

/** Why Velero's file-system backup will skip the claim's data, or undefined when nothing says it will. */
export function hostPathReason(facts: ClaimFacts): string | undefined {
  if (facts.volume?.hostPath) return facts.volume.name ? `its PersistentVolume ${facts.volume.name} is hostPath` : "its PersistentVolume is hostPath";
  if (facts.volume === undefined && (HOSTPATH_PROVISIONERS as readonly string[]).includes(facts.storageClass?.provisioner ?? "")) {
    return `its StorageClass ${facts.storageClass?.name ?? "(default)"} (${facts.storageClass?.provisioner}) provisions hostPath volumes`;
  }
  return undefined;
}

/** The claims of the pod's namespace Velero will skip, by claim name, from the state's "namespace/claim" map. */
export function claimReasonsIn(namespace: string, all: ReadonlyMap<string, string>): Map<string, string> {
  const prefix = `${namespace}/`;
  return new Map([...all].filter(([key]) => key.startsWith(prefix)).map(([key, reason]) => [key.slice(prefix.length), reason]));
}

/** Warnings for volumes the pod's annotations select whose claim Velero will skip; `reasons` by claim name. */
export function hostPathClaimWarnings(podVolumes: readonly PodVolume[], annotations: Readonly<Record<string, string>>, reasons: ReadonlyMap<string, string>): string[] {
  const selected = annotations[BACKUP_VOLUMES] === undefined ? [] : splitVolumeList(annotations[BACKUP_VOLUMES]);
  return podVolumes
    .filter((volume) => volume.claimName !== undefined && reasons.has(volume.claimName) && selected.includes(volume.name))
    .map((volume) => `volume "${volume.name}" is selected for backup, but ${reasons.get(volume.claimName!)} (claim ${volume.claimName}): Velero's file-system backup skips hostPath volumes, so its data will not be in the backup`);
}
