import { CoreV1Api, StorageV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { AdmissionReview } from "../admission/review.js";
import type { ClusterState } from "../admission/state.js";
import { DEFAULT_CLASS_ANNOTATION, hostPathReason, type ClaimFacts } from "../pods/hostPathClaims.js";
import { bounded } from "./bounded.js";

const DEFAULT_TIMEOUT_MS = 1_000;

export interface ClaimLookupsOptions {
  /** How long one lookup may take (default 1 s: the pod webhook's timeout is 5 s). */
  timeoutMs?: number;
  onLookupFailed?: (what: string, err: unknown) => void;
}

/**
 * For a pod being created: whether each claim it mounts is backed by a hostPath PersistentVolume (bound), or will be
 * (unbound, of a StorageClass whose provisioner makes hostPath volumes), read on demand with get/list only. What
 * cannot be read in time counts as unknown: no warning, never a failed admission.
 */
export class ClaimLookups {
  private readonly core: CoreV1Api;
  private readonly storage: StorageV1Api;

  constructor(
    kc: KubeConfig,
    private readonly options: ClaimLookupsOptions = {},
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.storage = kc.makeApiClient(StorageV1Api);
  }

  async prepare(review: AdmissionReview, state: ClusterState): Promise<ClusterState> {
    if (review.request.kind.kind !== "Pod" || review.request.operation !== "CREATE") return state;
    const namespace = review.request.namespace ?? "default";
    const volumes = ((review.request.object as { spec?: { volumes?: Array<{ persistentVolumeClaim?: { claimName?: unknown } }> } } | null)?.spec?.volumes ?? []).slice(0, 64);
    const claimNames = [...new Set(volumes.map((v) => v.persistentVolumeClaim?.claimName).filter((n): n is string => typeof n === "string" && n !== ""))];
    if (claimNames.length === 0) return state;
    const reasons = await Promise.all(claimNames.map(async (name) => [name, await this.bounded(`claim ${namespace}/${name}`, this.reasonFor(namespace, name))] as const));
    const hostPathClaims = new Map(state.hostPathClaims);
    for (const [name, reason] of reasons) if (reason) hostPathClaims.set(`${namespace}/${name}`, reason);
    return { ...state, hostPathClaims };
  }

  private async reasonFor(namespace: string, name: string): Promise<string | undefined> {
    let claim;
    try {
      claim = await this.core.readNamespacedPersistentVolumeClaim({ namespace, name });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined; // made after the pod: nothing to say yet
      throw err;
    }
    const facts: ClaimFacts = {};
    if (claim.spec?.volumeName) {
      const pv = await this.core.readPersistentVolume({ name: claim.spec.volumeName });
      facts.volume = { name: claim.spec.volumeName, hostPath: pv.spec?.hostPath !== undefined };
    } else if (claim.spec?.storageClassName) {
      const sc = await this.storage.readStorageClass({ name: claim.spec.storageClassName });
      facts.storageClass = { name: claim.spec.storageClassName, provisioner: sc.provisioner };
    } else if (claim.spec?.storageClassName === undefined) {
      // No class named: the default class provisions it (the admission plugin sets it when the claim is made).
      const sc = (await this.storage.listStorageClass()).items.find((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true");
      if (sc) facts.storageClass = { ...(sc.metadata?.name ? { name: sc.metadata.name } : {}), provisioner: sc.provisioner };
    }
    return hostPathReason(facts);
  }

  private bounded<T>(what: string, lookup: Promise<T>): Promise<T | undefined> {
    return bounded(lookup, this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (err) => this.options.onLookupFailed?.(what, err));
  }
}
