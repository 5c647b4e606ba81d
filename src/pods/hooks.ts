import type { Hooks } from "../policy/types.js";
import {
  HOOK_KEYS,
  HOOK_PHASES,
  HOOK_PREFIX,
  LEGACY_BACKUP_HOOK_PREFIX,
  ON_ERROR_VALUES,
  PHASE_TITLE,
  formatHookCommand,
  hookAnnotationsOf,
  parseGoBool,
  parseHookCommand,
  type HookPhase,
} from "../velero/annotations.js";
import { isGoDuration } from "../velero/duration.js";
import type { Pod } from "./pod.js";

/** The annotations (key suffix → value) a policy's hook of one phase becomes on this pod. */
function hookValues(phase: HookPhase, hooks: Hooks, firstContainer: string | undefined): Record<string, string> | undefined {
  switch (phase) {
    case "preBackup":
    case "postBackup": {
      const hook = hooks[phase];
      if (!hook) return undefined;
      return {
        container: hook.container ?? firstContainer ?? "",
        command: formatHookCommand(hook.command),
        // Always explicit: Velero <= 1.18 treats a missing backup on-error as Continue in practice.
        "on-error": hook.onError,
        ...(hook.timeout ? { timeout: hook.timeout } : {}),
      };
    }
    case "postRestore": {
      const hook = hooks.postRestore;
      if (!hook) return undefined;
      return {
        container: hook.container ?? firstContainer ?? "",
        command: formatHookCommand(hook.command),
        "on-error": hook.onError,
        ...(hook.execTimeout ? { "exec-timeout": hook.execTimeout } : {}),
        ...(hook.waitTimeout ? { "wait-timeout": hook.waitTimeout } : {}),
        ...(hook.waitForReady !== undefined ? { "wait-for-ready": String(hook.waitForReady) } : {}),
      };
    }
    case "initRestore": {
      const hook = hooks.initRestore;
      if (!hook) return undefined;
      return { "container-image": hook.image, "container-name": hook.name, command: formatHookCommand(hook.command) };
    }
  }
}

/** Does the pod already carry a hook of this phase (the legacy un-prefixed keys count as pre-backup)? */
function podHasPhase(annotations: Record<string, string>, phase: HookPhase): boolean {
  const prefixes = phase === "preBackup" ? [HOOK_PREFIX.preBackup, LEGACY_BACKUP_HOOK_PREFIX] : [HOOK_PREFIX[phase]];
  return Object.keys(annotations).some((key) => prefixes.some((prefix) => key.startsWith(prefix)));
}

const sameValues = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * Writes the policy's hooks into `annotations` (mutated in place) for every phase the pod does
 * not set itself. Returns the warnings.
 */
export function applyPolicyHooks(pod: Pod, annotations: Record<string, string>, hooks: Hooks, policy: string): string[] {
  const warnings: string[] = [];
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  for (const phase of HOOK_PHASES) {
    const values = hookValues(phase, hooks, containers[0]);
    if (!values) continue;
    if (podHasPhase(annotations, phase)) {
      if (!sameValues(hookAnnotationsOf(annotations, phase), values)) {
        warnings.push(`pod sets its own ${PHASE_TITLE[phase]} hook annotations; the ${PHASE_TITLE[phase]} hook of policy ${policy} was not applied`);
      }
      continue;
    }
    if (phase !== "initRestore" && !containers.includes(values.container!)) {
      warnings.push(`${PHASE_TITLE[phase]} hook of policy ${policy} not written: the pod has no container "${values.container}"`);
      continue;
    }
    for (const [key, value] of Object.entries(values)) annotations[HOOK_PREFIX[phase] + key] = value;
  }
  return warnings;
}

const DURATION_KEYS = new Set(["timeout", "exec-timeout", "wait-timeout"]);

/** Warnings for hook annotations Velero would misread, ignore, or crash on. */
export function lintHookAnnotations(annotations: Record<string, string>): string[] {
  const warnings: string[] = [];
  const phases: Array<[string, readonly string[]]> = [
    ...HOOK_PHASES.map((phase) => [HOOK_PREFIX[phase], HOOK_KEYS[phase]] as [string, readonly string[]]),
    [LEGACY_BACKUP_HOOK_PREFIX, HOOK_KEYS.preBackup],
  ];
  for (const [prefix, knownKeys] of phases) {
    for (const [key, value] of Object.entries(annotations)) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length);
      if (name === "timeout" && prefix === HOOK_PREFIX.postRestore) {
        warnings.push(`${key} does not exist and is ignored (Velero waits the default 30s); use ${prefix}exec-timeout`);
      } else if (!knownKeys.includes(name)) {
        warnings.push(`${key} is not a key Velero reads; it is ignored (known: ${knownKeys.join(", ")})`);
      } else if (name === "command") {
        const parsed = parseHookCommand(value);
        if (!parsed.decodedAsJson && value.startsWith("[")) {
          warnings.push(`${key} is not valid JSON (single quotes?); Velero runs the whole text as one program name. Use ["cmd","arg"]`);
        } else if (!parsed.decodedAsJson && /\s/.test(value)) {
          warnings.push(`${key} has spaces but is not a JSON array: Velero runs "${value.length > 40 ? `${value.slice(0, 40)}...` : value}" as ONE program name. Use ["/bin/sh","-c","..."]`);
        } else if (parsed.argv.length === 0) {
          warnings.push(`${key} is an empty array; the hook cannot run`);
        }
      } else if (name === "on-error" && !(ON_ERROR_VALUES as readonly string[]).includes(value)) {
        warnings.push(`${key}: "${value}" is neither Continue nor Fail (case-sensitive); Velero treats it as unset`);
      } else if (DURATION_KEYS.has(name) && !isGoDuration(value) && prefix !== HOOK_PREFIX.initRestore) {
        warnings.push(`${key}: "${value}" is not a Go duration (e.g. 30s, 5m, 1h30m); Velero ignores it and uses its default`);
      } else if (name === "wait-for-ready" && parseGoBool(value) === undefined) {
        warnings.push(`${key}: "${value}" is not a boolean; Velero treats it as false`);
      }
    }
  }
  const init = HOOK_PREFIX.initRestore;
  if (annotations[`${init}container-image`] !== undefined && !annotations[`${init}command`]) {
    warnings.push(`${init}container-image without ${init}command: Velero <= 1.18.2 panics restoring this pod; add a command`);
  }
  if (annotations[`${init}timeout`] !== undefined) {
    warnings.push(`${init}timeout is declared by Velero but never used`);
  }
  return warnings;
}
