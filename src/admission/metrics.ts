import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { ADMISSION_LATENCY_BUCKETS } from "../server/metrics.js";

export type Outcome = "patched" | "allowed" | "denied" | "invalid" | "error" | "timeout";

export interface AdmissionMetrics {
  requests: Counter<"webhook" | "operation" | "outcome">;
  duration: Histogram<"webhook">;
  patches: Counter<"webhook">;
  warnings: Counter<"webhook">;
  policies: Gauge<"kind">;
  /** Writes of pod warnings as Events on their workloads: created, updated (series), exists (another replica's), failed. */
  warningEvents: Counter<"result">;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  return {
    requests: new Counter({
      name: "app_snapshots_admission_requests_total",
      help: "Admission requests by webhook, operation and outcome.",
      labelNames: ["webhook", "operation", "outcome"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "app_snapshots_admission_duration_seconds",
      help: "Time from request arrival to response, by webhook (the apiserver's admission buckets).",
      labelNames: ["webhook"],
      buckets: ADMISSION_LATENCY_BUCKETS,
      registers: [registry],
    }),
    patches: new Counter({ name: "app_snapshots_admission_patches_total", help: "Responses that carried a patch.", labelNames: ["webhook"], registers: [registry] }),
    warnings: new Counter({ name: "app_snapshots_admission_warnings_total", help: "Warnings returned to clients.", labelNames: ["webhook"], registers: [registry] }),
    policies: new Gauge({ name: "app_snapshots_policies_loaded", help: "Policies in the current state, by kind.", labelNames: ["kind"], registers: [registry] }),
    warningEvents: new Counter({
      name: "app_snapshots_warning_events_total",
      help: "Pod warnings written as Events on their workloads, by result (created, updated, exists, failed).",
      labelNames: ["result"],
      registers: [registry],
    }),
  };
}
