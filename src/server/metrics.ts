import { Registry, collectDefaultMetrics } from "prom-client";

/**
 * A registry per process (never prom-client's global one, so tests can build several).
 * Histograms across the project use the apiserver's admission buckets, so our numbers
 * line up with `apiserver_admission_webhook_admission_duration_seconds`.
 */
export const ADMISSION_LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25];

export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "app_snapshots_" });
  return registry;
}
