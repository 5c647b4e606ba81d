import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import type { WarningOccurrence } from "../admission/warningEvents.js";
import type { Logger } from "../server/logger.js";
import { microTime } from "./microTime.js";
import { KubeRequestError, kubeRequest } from "./request.js";

/** An events.k8s.io/v1 Event as we write it. */
export interface KubeEvent {
  apiVersion: "events.k8s.io/v1";
  kind: "Event";
  metadata: { name: string; namespace: string };
  eventTime: string;
  series?: EventSeries;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string };
  note: string;
  type: "Warning";
}

export interface EventSeries {
  count: number;
  lastObservedTime: string;
}

/** Where Events go; "exists" and "gone" are answers, anything else throws. */
export interface EventSink {
  create(event: KubeEvent): Promise<"created" | "exists">;
  patchSeries(namespace: string, name: string, series: EventSeries): Promise<"patched" | "gone">;
}

export type EventWriteResult = "created" | "updated" | "exists" | "failed";

export interface EventRecorderOptions {
  sink: EventSink;
  log: Logger;
  reportingController: string;
  /** This replica (its pod name); cut to the 128 characters the apiserver accepts. */
  reportingInstance: string;
  now?: () => number;
  /** At most one API write per (workload, text) per window, and one info log line. */
  windowMs?: number;
  /** Distinct (workload, text) pairs remembered; the least recently seen are forgotten first. */
  maxEntries?: number;
  /** Each API call is abandoned after this long (the admission response never waits for it). */
  timeoutMs?: number;
  /** Writes under way at once; more wait their turn (a rollout of many workloads is not a burst of calls). */
  maxInFlight?: number;
  onWrite?: (result: EventWriteResult) => void;
}

interface Entry {
  occurrence: WarningOccurrence;
  /** The Event's name; absent when there is nothing to record it on (a bare pod): logged only. */
  eventName: string | undefined;
  /** Occurrences since the Event was created (its series count). */
  count: number;
  lastObservedAt: number;
  loggedAt: number;
  /** The count the apiserver holds (or, for an Event another writer made, the count when we saw it). */
  written: number;
  attemptedAt: number | undefined;
  /** We created the Event, so we keep its series; one made by another replica is left to it. */
  owned: boolean;
  busy: boolean;
}

/** events.k8s.io/v1 limits (kubernetes v1.34 pkg/apis/core/validation/events.go, legacyValidateEvent). */
const NOTE_LIMIT_BYTES = 1024;
const REPORTING_INSTANCE_LIMIT = 128;
const NAME_LIMIT = 253;

/** The longest prefix of `text` that fits in `limit` UTF-8 bytes (the apiserver counts bytes). */
function cutToBytes(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text;
  let bytes = 0;
  let out = "";
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > limit - 3) break;
    out += ch;
  }
  return `${out}...`;
}

/**
 * The same name for the same (workload, reason, text) on every replica and after a restart, so a
 * second writer gets AlreadyExists instead of adding a duplicate Event.
 */
export function eventName(occurrence: WarningOccurrence): string | undefined {
  const r = occurrence.regarding;
  if (!r) return undefined;
  const hash = createHash("sha256").update([r.apiVersion, r.kind, r.name, r.uid ?? "", occurrence.reason, occurrence.note].join("\0")).digest("hex").slice(0, 16);
  const prefix = r.name.slice(0, NAME_LIMIT - hash.length - 1).replace(/[-.]+$/, "");
  return `${prefix}.${hash}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Records admission warnings as Warning Events on the workloads they concern, and logs each text
 * at info, without ever holding up an admission: record() returns at once and never throws.
 * Like client-go's events broadcaster (tools/events), a repeat does not make a new Event: the
 * count goes into the Event's series, written at most once per window per (workload, text);
 * the text is logged once per window too. Memory is bounded by maxEntries.
 */
export class EventRecorder {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly reportingInstance: string;
  private inFlight = 0;
  /** Entries whose write waits for a free slot, oldest first. */
  private readonly waiting = new Set<Entry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: EventRecorderOptions) {
    this.now = options.now ?? Date.now;
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.maxEntries = options.maxEntries ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.reportingInstance = options.reportingInstance.slice(0, REPORTING_INSTANCE_LIMIT);
  }

  /** Counts one occurrence; logs and writes when due. The write runs in the background. */
  record(occurrence: WarningOccurrence): void {
    const now = this.now();
    const key = JSON.stringify([occurrence.namespace, occurrence.subject, occurrence.regarding?.uid, occurrence.reason, occurrence.note]);
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key); // re-inserted below: Map order is least recently seen first
    else entry = { occurrence, eventName: eventName(occurrence), count: 0, lastObservedAt: now, loggedAt: -Infinity, written: 0, attemptedAt: undefined, owned: false, busy: false };
    entry.count++;
    entry.lastObservedAt = now;
    this.entries.set(key, entry);
    for (const [oldest, forgotten] of this.entries) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
      this.waiting.delete(forgotten);
    }
    if (now - entry.loggedAt >= this.windowMs) {
      entry.loggedAt = now;
      this.options.log.info({ namespace: occurrence.namespace, object: occurrence.subject, reason: occurrence.reason }, occurrence.note);
    }
    void this.write(entry, now);
  }

  /** Writes every count that is due (the timer calls this); forgets entries idle for six windows. */
  async flush(): Promise<void> {
    const now = this.now();
    const writes: Array<Promise<void>> = [];
    for (const [key, entry] of this.entries) {
      if (!entry.busy && entry.count === entry.written && now - entry.lastObservedAt >= 6 * this.windowMs) {
        this.entries.delete(key);
        this.waiting.delete(entry);
      } else writes.push(this.write(entry, now));
    }
    await Promise.all(writes);
  }

  /** Flushes every tenth of a window, so a count waits at most about one window to be written. */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), Math.max(this.windowMs / 10, 1_000));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private async write(entry: Entry, now: number): Promise<void> {
    this.waiting.delete(entry);
    const name = entry.eventName;
    const regarding = entry.occurrence.regarding;
    if (!name || !regarding || entry.busy || entry.count === entry.written) return;
    if (entry.attemptedAt !== undefined && now - entry.attemptedAt < this.windowMs) return;
    if (this.inFlight >= this.maxInFlight) {
      this.waiting.add(entry); // written when a slot frees
      return;
    }
    this.inFlight++;
    entry.busy = true;
    entry.attemptedAt = now;
    const count = entry.count;
    const namespace = entry.occurrence.namespace;
    const series = count > 1 ? { count, lastObservedTime: microTime(entry.lastObservedAt) } : undefined;
    let result: EventWriteResult = "failed";
    try {
      if (entry.owned && series && (await withTimeout(this.options.sink.patchSeries(namespace, name, series), this.timeoutMs)) === "patched") {
        result = "updated";
      } else {
        // First write, or our Event expired (the apiserver's --event-ttl): create it, with the count so far.
        const event: KubeEvent = {
          apiVersion: "events.k8s.io/v1",
          kind: "Event",
          metadata: { name, namespace },
          eventTime: microTime(now),
          ...(series ? { series } : {}),
          reportingController: this.options.reportingController,
          reportingInstance: this.reportingInstance,
          action: entry.occurrence.action,
          reason: entry.occurrence.reason,
          regarding,
          note: cutToBytes(entry.occurrence.note, NOTE_LIMIT_BYTES),
          type: "Warning",
        };
        result = (await withTimeout(this.options.sink.create(event), this.timeoutMs)) === "created" ? "created" : "exists";
        entry.owned = result === "created";
      }
      entry.written = count;
    } catch (err) {
      // Retried on the next occurrence or flush after a window; the warning itself was already returned to the client.
      this.options.log.warn({ err: (err as Error).message, namespace, event: name }, "could not record a warning Event");
    } finally {
      this.inFlight--;
      entry.busy = false;
      this.options.onWrite?.(result);
      this.pump();
    }
  }

  /** Starts waiting writes while slots are free. */
  private pump(): void {
    for (const entry of this.waiting) {
      if (this.inFlight >= this.maxInFlight) return;
      void this.write(entry, this.now());
    }
  }
}

/**
 * The sink for a cluster: plain events.k8s.io/v1 requests with the webhook's credentials, each closed
 * after `timeoutMs` (the recorder's own bound only stops waiting for it).
 */
export function kubeEventSink(kc: KubeConfig, timeoutMs = 5_000): EventSink {
  const base = (namespace: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
  return {
    async create(event) {
      try {
        await kubeRequest(kc, "POST", base(event.metadata.namespace), event, "application/json", timeoutMs);
        return "created";
      } catch (err) {
        if (err instanceof KubeRequestError && err.status === 409) return "exists";
        throw err;
      }
    },
    async patchSeries(namespace, name, series) {
      try {
        await kubeRequest(kc, "PATCH", `${base(namespace)}/${encodeURIComponent(name)}`, { series }, "application/merge-patch+json", timeoutMs);
        return "patched";
      } catch (err) {
        if (err instanceof KubeRequestError && err.status === 404) return "gone";
        throw err;
      }
    },
  };
}
