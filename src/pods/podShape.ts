import { z } from "zod";

/**
 * The types of the Pod fields the pod rules read (src/pods/pod.ts), checked before they run. An
 * apiserver always sends them typed; a hand-made review may not, and `containers: {}` threw inside
 * the rules (an "internal error" answer and an error log) instead of saying what is wrong.
 * Kubernetes JSON may carry null for any optional field, so optional means nullish here.
 */
const loose = z.object({}).loose();
const mount = z.object({ name: z.string(), mountPath: z.string().nullish(), subPath: z.string().nullish() }).loose();
const device = z.object({ name: z.string(), devicePath: z.string().nullish() }).loose();
const container = z
  .object({ name: z.string(), image: z.string().nullish(), volumeMounts: z.array(mount).nullish(), volumeDevices: z.array(device).nullish(), securityContext: loose.nullish() })
  .loose();
const podShape = z
  .object({
    metadata: z
      .object({
        name: z.string().nullish(),
        generateName: z.string().nullish(),
        namespace: z.string().nullish(),
        labels: z.record(z.string(), z.string()).nullish(),
        annotations: z.record(z.string(), z.string()).nullish(),
        ownerReferences: z.array(z.object({ kind: z.string().nullish(), controller: z.boolean().nullish() }).loose()).nullish(),
      })
      .loose()
      .nullish(),
    spec: z
      .object({
        containers: z.array(container).nullish(),
        initContainers: z.array(container).nullish(),
        volumes: z.array(z.object({ name: z.string() }).catchall(z.union([loose, z.null()]))).nullish(),
        securityContext: loose.nullish(),
        restartPolicy: z.string().nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();

/** What is wrong with a pod object's types, naming the first wrong field; undefined when the rules can read it. */
export function podShapeProblem(pod: unknown): string | undefined {
  const result = podShape.safeParse(pod);
  if (result.success) return undefined;
  const issue = result.error.issues[0]!;
  return `${issue.path.join(".") || "the pod"}: ${issue.message}`;
}
