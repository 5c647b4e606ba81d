// Helpers for the real-node suites: run a busybox pod to completion and read what it printed.
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { until } from "../cluster/wait.js";

export async function runPod(kc: KubeConfig, image: string, name: string, script: string, extra: Partial<V1Pod["spec"]> = {}): Promise<{ phase: string; logs: string }> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: "default",
    body: {
      metadata: { name },
      spec: { restartPolicy: "Never", containers: [{ name: "main", image, imagePullPolicy: "Never", command: ["sh", "-c", script] }], ...extra },
    },
  });
  const phase = await until(
    `pod ${name} to finish`,
    async () => {
      const pod = await core.readNamespacedPod({ name, namespace: "default" });
      return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed" ? pod.status.phase : undefined;
    },
    90_000,
    250,
  );
  const logs = await core.readNamespacedPodLog({ name, namespace: "default", container: "main" });
  return { phase, logs };
}
