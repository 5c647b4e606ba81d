import { Counter, Histogram, type Registry } from "prom-client";

export interface StorageMetrics {
  requests: Counter<"server" | "operation" | "code">;
  bytesSent: Counter<"server">;
  bytesReceived: Counter<"server">;
  duration: Histogram<"server" | "operation">;
}

/** Request counts, bytes and latency per endpoint (`lvp`, later `s3`) and operation. */
export function createStorageMetrics(registry: Registry): StorageMetrics {
  return {
    requests: new Counter({
      name: "app_snapshots_storage_requests_total",
      help: "Storage requests by server, operation and HTTP status code.",
      labelNames: ["server", "operation", "code"],
      registers: [registry],
    }),
    bytesSent: new Counter({ name: "app_snapshots_storage_sent_bytes_total", help: "Object bytes sent to clients.", labelNames: ["server"], registers: [registry] }),
    bytesReceived: new Counter({ name: "app_snapshots_storage_received_bytes_total", help: "Object bytes received from clients.", labelNames: ["server"], registers: [registry] }),
    duration: new Histogram({
      name: "app_snapshots_storage_request_duration_seconds",
      help: "Time from request to the last byte of the response.",
      labelNames: ["server", "operation"],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300],
      registers: [registry],
    }),
  };
}
