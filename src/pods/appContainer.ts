import type { Container, Pod } from "./pod.js";

/**
 * Containers injected next to the application by meshes and agents. Their injectors may put them
 * first (Istio's holdApplicationUntilProxyStarts, Linkerd's proxy-await), so "the first container"
 * is not the application.
 */
const KNOWN_SIDECARS = new Set([
  "istio-proxy",
  "linkerd-proxy",
  "envoy",
  "envoy-sidecar",
  "consul-dataplane",
  "consul-connect-envoy-sidecar",
  "kuma-sidecar",
  "daprd",
  "vault-agent",
  "cloud-sql-proxy",
  "cloudsql-proxy",
  "aws-xray-daemon",
  "datadog-agent",
  "otel-collector",
]);

/** The annotation kubectl reads to pick a pod's main container (kubectl exec/logs). */
const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

export interface AppContainer {
  container: Container;
  /** Set when the choice is not simply the first container: how it was made. */
  note: string | undefined;
}

/**
 * The application container of a pod: kubectl's default-container annotation when it names a
 * container, else the first container that is not a known injected sidecar. Native sidecars
 * (init containers with restartPolicy Always) are never candidates: they live in initContainers,
 * and Velero <= 1.18.2 runs hooks only in spec.containers (pkg/podexec ensureContainerExists).
 */
export function appContainer(pod: Pod): AppContainer | undefined {
  const containers = pod.spec?.containers ?? [];
  if (containers.length === 0) return undefined;
  const named = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  const byAnnotation = named === undefined ? undefined : containers.find((c) => c.name === named);
  if (byAnnotation) {
    return { container: byAnnotation, note: byAnnotation === containers[0] ? undefined : `container "${byAnnotation.name}" (named by ${DEFAULT_CONTAINER_ANNOTATION})` };
  }
  const app = containers.find((c) => !KNOWN_SIDECARS.has(c.name));
  if (!app) return { container: containers[0]!, note: undefined };
  if (app === containers[0]) return { container: app, note: undefined };
  const skipped = containers.slice(0, containers.indexOf(app)).map((c) => c.name);
  return { container: app, note: `container "${app.name}" (not the first container: ${skipped.join(", ")} ${skipped.length > 1 ? "are" : "is an"} injected sidecar${skipped.length > 1 ? "s" : ""})` };
}
