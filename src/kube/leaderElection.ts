import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../server/logger.js";
import { microTime } from "./microTime.js";
import { KubeRequestError, kubeGetOptional, kubeRequest } from "./request.js";

/** The fields of a coordination.k8s.io/v1 Lease that election reads and writes. */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export type LeaseDecision = { action: "create" | "renew" | "take-over"; spec: LeaseSpec } | { action: "follow"; holder: string; expiresAt: number };


/**
 * client-go's rule, as a pure function: a Lease held by someone else is respected until
 * renewTime + leaseDurationSeconds has passed; then anyone may take it over (counting a transition).
 */
export function leaseDecision(current: LeaseSpec | undefined, identity: string, now: number, durationSeconds: number): LeaseDecision {
  const fresh = (transitions: number, acquired: string): LeaseSpec => ({
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: acquired,
    renewTime: microTime(now),
    leaseTransitions: transitions,
  });
  if (!current) return { action: "create", spec: fresh(0, microTime(now)) };
  const holder = current.holderIdentity ?? "";
  const transitions = current.leaseTransitions ?? 0;
  if (holder === identity) return { action: "renew", spec: fresh(transitions, current.acquireTime ?? microTime(now)) };
  const renewed = current.renewTime ? Date.parse(current.renewTime) : NaN;
  const expiresAt = (Number.isNaN(renewed) ? 0 : renewed) + (current.leaseDurationSeconds ?? durationSeconds) * 1000;
  if (holder !== "" && now < expiresAt) return { action: "follow", holder, expiresAt };
  return { action: "take-over", spec: fresh(holder === "" ? transitions : transitions + 1, microTime(now)) };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  /** A leader that could not renew for this long stops leading (before others may take over). */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartLeading: () => void;
  onStopLeading: () => void;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/**
 * Lease-based leader election (client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry).
 * Writes carry the resourceVersion read, so two candidates never both win a round. Leadership is
 * also given up on stop(), releasing the Lease so a successor does not wait out the duration.
 */
export class LeaderElector {
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly durationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly path: string;

  constructor(
    private readonly kc: KubeConfig,
    private readonly log: Logger,
    private readonly options: LeaderElectionOptions,
  ) {
    this.durationSeconds = options.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.round();
  }

  private schedule(): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.round(), this.retryPeriodMs);
  }

  private async round(): Promise<void> {
    try {
      const renewed = await this.tryAcquireOrRenew();
      if (renewed) {
        this.lastRenew = Date.now();
        this.setLeading(true);
      } else {
        this.setLeading(false);
      }
    } catch (err) {
      this.log.warn({ lease: this.options.name, err: (err as Error).message }, "leader election round failed");
      if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) this.setLeading(false);
    }
    this.schedule();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading || this.stopped) return;
    this.leading = leading;
    this.log.info({ lease: this.options.name, identity: this.options.identity }, leading ? "became the leader" : "stopped leading");
    if (leading) this.options.onStartLeading();
    else this.options.onStopLeading();
  }

  private read(): Promise<Lease | undefined> {
    return kubeGetOptional<Lease>(this.kc, `${this.path}/${encodeURIComponent(this.options.name)}`);
  }

  /** True when we hold the Lease after this round; a lost write race (409) means someone else does. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const lease = await this.read();
    const decision = leaseDecision(lease?.spec, this.options.identity, Date.now(), this.durationSeconds);
    if (decision.action === "follow") return false;
    const metadata = { name: this.options.name, namespace: this.options.namespace, ...(lease?.metadata.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}) };
    const body = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata, spec: decision.spec };
    try {
      if (decision.action === "create") await kubeRequest(this.kc, "POST", this.path, body);
      else await kubeRequest(this.kc, "PUT", `${this.path}/${encodeURIComponent(this.options.name)}`, body);
      return true;
    } catch (err) {
      if (err instanceof KubeRequestError && (err.status === 409 || err.status === 422)) return false;
      throw err;
    }
  }

  /** Stops the loop; a leader releases the Lease (empty holder, 1 s duration) so a successor takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    this.options.onStopLeading();
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      const spec: LeaseSpec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(Date.now()) };
      await kubeRequest(this.kc, "PUT", `${this.path}/${encodeURIComponent(this.options.name)}`, { ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec });
    } catch (err) {
      this.log.warn({ lease: this.options.name, err: (err as Error).message }, "could not release the Lease");
    }
  }
}
