import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { RESTORE_HOOK_ANNOTATION } from "../policy/annotations.js";
import type { InitRestoreHook } from "../policy/types.js";
import { HOOK_PREFIX, RESTORE_WAIT_CONTAINERS, hookAnnotationsOf } from "../velero/annotations.js";
import type { AppContainer } from "./appContainer.js";
import type { Container, Pod } from "./pod.js";
import type { VolumeChoice } from "./volumes.js";

/** The uid the hook runs as when neither the policy, the application container nor the pod sets one. */
export const DEFAULT_HOOK_UID = 1000;


type Mount = NonNullable<Container["volumeMounts"]>[number];

/** Where the pod's containers mount a volume: the application container first, then the others. */
function mountOf(pod: Pod, app: Container | undefined, volume: string): Mount | undefined {
  const containers = [...(app ? [app] : []), ...(pod.spec?.containers ?? [])];
  for (const container of containers) {
    const mount = container.volumeMounts?.find((m) => m.name === volume && typeof m.mountPath === "string");
    if (mount) return mount;
  }
  return undefined;
}

/**
 * A securityContext hardened to Pod Security "restricted": no privilege escalation, every capability
 * dropped, the runtime's seccomp profile (unless one is set), non-root with a numeric uid.
 */
function hardenSecurityContext(context: Record<string, unknown>, podSeccomp: unknown): Record<string, unknown> {
  const hardened: Record<string, unknown> = { ...context };
  delete hardened.privileged;
  delete hardened.procMount;
  const seccomp = (hardened.seccompProfile ?? podSeccomp) as { type?: string } | undefined;
  return {
    ...hardened,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    runAsNonRoot: true,
    runAsUser: numeric(hardened.runAsUser) ?? DEFAULT_HOOK_UID,
    seccompProfile: seccomp?.type === "RuntimeDefault" || seccomp?.type === "Localhost" ? seccomp : { type: "RuntimeDefault" },
  };
}

/**
 * The hook's securityContext: the application container's (so the hook can write the files the
 * application owns), with the uid of the policy, the container or the pod, hardened.
 */
function hookSecurityContext(pod: Pod, app: Container | undefined, hook: InitRestoreHook, warnings: string[], ref: string): Record<string, unknown> {
  const appContext: Record<string, unknown> = { ...(app?.securityContext ?? {}) };
  const podContext = pod.spec?.securityContext ?? {};
  const uid = hook.runAsUser ?? numeric(appContext.runAsUser) ?? numeric(podContext.runAsUser);
  if (uid === undefined) {
    warnings.push(
      `init-restore hook ${hook.name} of policy ${ref} runs as uid ${DEFAULT_HOOK_UID}: neither the policy (initRestore.runAsUser), the application container nor the pod sets runAsUser; it may not be able to write the application's files`,
    );
  }
  const group = numeric(appContext.runAsGroup) ?? numeric(podContext.runAsGroup);
  return hardenSecurityContext({ ...appContext, ...(uid !== undefined ? { runAsUser: uid } : {}), ...(group !== undefined ? { runAsGroup: group } : {}) }, podContext.seccompProfile);
}

const numeric = (value: unknown): number | undefined => (typeof value === "number" && value > 0 ? value : undefined);

/** The init container app-snapshots adds to a restored pod for the policy's initRestore hook. */
export function buildHookContainer(pod: Pod, hook: InitRestoreHook, choices: ReadonlyMap<string, VolumeChoice>, app: AppContainer | undefined, ref: string): { container: Container; warnings: string[] } {
  const warnings: string[] = [];
  const appContainer = app?.container;
  const podVolumes = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  // Default: every volume the policy selects, where the application sees it.
  type Wanted = NonNullable<InitRestoreHook["volumeMounts"]>[number];
  const wanted: Wanted[] = hook.volumeMounts ?? [...choices].filter(([, choice]) => choice.selected).map(([name]) => ({ name }));
  const volumeMounts: Mount[] = [];
  for (const want of wanted) {
    if (!podVolumes.has(want.name)) {
      warnings.push(`init-restore hook ${hook.name} of policy ${ref}: the pod has no volume "${want.name}"; not mounted`);
      continue;
    }
    const existing = mountOf(pod, appContainer, want.name);
    const mountPath = want.mountPath ?? existing?.mountPath;
    if (mountPath === undefined) {
      warnings.push(`init-restore hook ${hook.name} of policy ${ref}: no container mounts "${want.name}" and the policy gives no mountPath; not mounted`);
      continue;
    }
    // The application's subPath too, so the hook sees the same files at the same path.
    const subPath = want.subPath ?? (want.mountPath === undefined ? existing?.subPath : undefined);
    volumeMounts.push({ name: want.name, mountPath, ...(subPath ? { subPath } : {}) });
  }
  const container: Container = {
    name: hook.name,
    image: hook.image,
    command: [...hook.command],
    ...(volumeMounts.length > 0 ? { volumeMounts } : {}),
    securityContext: hookSecurityContext(pod, appContainer, hook, warnings, ref),
    // Quotas that require requests/limits count init containers too; the app's own fit by construction.
    ...(appContainer?.resources !== undefined ? { resources: appContainer.resources } : {}),
  };
  return { container, warnings };
}

/** The fields app-snapshots sets on the hook container; the apiserver may default others. */
const OWN_FIELDS = ["name", "image", "command", "volumeMounts", "securityContext", "resources"] as const;
const sameHook = (existing: Container, wanted: Container) => OWN_FIELDS.every((field) => isDeepStrictEqual(existing[field], wanted[field]));

export interface RestoreHookAnnotation {
  /** The annotation's value (the container as JSON), or undefined when the hook cannot be added. */
  value: string | undefined;
  warnings: string[];
  refused: string | undefined;
}

/**
 * The policy's init-restore hook, as the container app-snapshots will add when this pod is restored,
 * written to RESTORE_HOOK_ANNOTATION at admission. It travels with the pod into the backup, like
 * Velero's own restore hook annotations, because at restore time the policy may not exist yet: Velero
 * restores pods before custom resources (its default restore priorities, pkg/cmd/server/server.go
 * defaultRestorePriorities), so a SnapshotPolicy of a namespace being restored arrives after its pods.
 */
export function restoreHookAnnotation(pod: Pod, hook: InitRestoreHook, choices: ReadonlyMap<string, VolumeChoice>, app: AppContainer | undefined, ref: string): RestoreHookAnnotation {
  const refuse = (refused: string): RestoreHookAnnotation => ({ value: undefined, warnings: [], refused });
  if ((pod.spec?.containers ?? []).some((c) => c.name === hook.name)) {
    return refuse(`init-restore hook of policy ${ref} not added: the pod already has a container named "${hook.name}"`);
  }
  const own = hookAnnotationsOf(pod.metadata?.annotations ?? {}, "initRestore");
  // The pod's own annotation hook: Velero adds that container; a second one from the policy would run
  // both. Annotations naming this hook's container and image are the ones an earlier app-snapshots
  // wrote: the container inserted at restore replaces the one Velero builds from them (same name).
  if (own["container-image"] !== undefined && !(own["container-name"] === hook.name && own["container-image"] === hook.image)) {
    return refuse(`pod sets its own ${HOOK_PREFIX.initRestore}* hook; the init-restore hook of policy ${ref} was not added`);
  }
  const { container, warnings } = buildHookContainer(pod, hook, choices, app, ref);
  return { value: JSON.stringify(container), warnings, refused: undefined };
}

const mountSchema = z.object({ name: z.string().min(1), mountPath: z.string().min(1), subPath: z.string().optional() });
/** What RESTORE_HOOK_ANNOTATION may hold: exactly the fields buildHookContainer writes. */
const hookContainerSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/),
  image: z.string().min(1),
  command: z.array(z.string()).min(1),
  volumeMounts: z.array(mountSchema).optional(),
  securityContext: z.record(z.string(), z.unknown()).optional(),
  resources: z.record(z.string(), z.unknown()).optional(),
});

export interface RestoreHookInsertion {
  /** The new init container list, or undefined when nothing changes. */
  initContainers: Container[] | undefined;
  warnings: string[];
}

/**
 * Puts the init-restore hook a restored pod carries in RESTORE_HOOK_ANNOTATION (written when the pod
 * was backed up) into the pod, right after restore-wait (or first). Velero's own annotation hooks get
 * image, name and command only (internal/hook/item_hook_handler.go getInitContainerFromAnnotation: no
 * volumeMounts, no securityContext), so they cannot touch the data and fail Pod Security "restricted".
 * The annotation is checked and its securityContext hardened again, whoever wrote it. A container of
 * the same name (a reinvocation, or a pod backed up after an earlier restore) is replaced, so applying
 * this twice changes nothing. `initContainers` is the list after restore-wait has been put first.
 */
export function insertRestoreHook(pod: Pod, initContainers: readonly Container[], value: string): RestoreHookInsertion {
  const unchanged: RestoreHookInsertion = { initContainers: undefined, warnings: [] };
  let parsed: z.infer<typeof hookContainerSchema>;
  try {
    parsed = hookContainerSchema.parse(JSON.parse(value));
  } catch {
    return { ...unchanged, warnings: [`${RESTORE_HOOK_ANNOTATION} is not an init container app-snapshots wrote; no init-restore hook added`] };
  }
  const podVolumes = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  const dropped = (parsed.volumeMounts ?? []).filter((m) => !podVolumes.has(m.name)).map((m) => m.name);
  const volumeMounts = (parsed.volumeMounts ?? []).filter((m) => podVolumes.has(m.name));
  if ((pod.spec?.containers ?? []).some((c) => c.name === parsed.name) || (RESTORE_WAIT_CONTAINERS as readonly string[]).includes(parsed.name)) {
    return { ...unchanged, warnings: [`init-restore hook not added: the pod already has a container named "${parsed.name}"`] };
  }
  const container: Container = {
    name: parsed.name,
    image: parsed.image,
    command: parsed.command,
    ...(volumeMounts.length > 0 ? { volumeMounts } : {}),
    securityContext: hardenSecurityContext(parsed.securityContext ?? {}, undefined),
    ...(parsed.resources !== undefined ? { resources: parsed.resources } : {}),
  };
  const warnings = dropped.length > 0 ? [`init-restore hook ${parsed.name}: the restored pod has no volume ${dropped.join(", ")}; not mounted`] : [];
  const position = initContainers.length > 0 && (RESTORE_WAIT_CONTAINERS as readonly string[]).includes(initContainers[0]!.name) ? 1 : 0;
  const current = initContainers[position];
  if (current?.name === container.name && sameHook(current, container)) return unchanged;
  const list = initContainers.filter((c) => c.name !== container.name);
  list.splice(position, 0, container);
  return { initContainers: list, warnings };
}
