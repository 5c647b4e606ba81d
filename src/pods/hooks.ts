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
import type { AppContainer } from "./appContainer.js";
import type { Pod } from "./pod.js";

type ExecPhase = Exclude<HookPhase, "initRestore">;

/** The annotations (key suffix → value) a policy's exec hook of one phase becomes on this pod. */
function hookValues(phase: ExecPhase, hooks: Hooks, defaultContainer: string | undefined): Record<string, string> | undefined {
  switch (phase) {
    case "preBackup":
    case "postBackup": {
      const hook = hooks[phase];
      if (!hook) return undefined;
      return {
        container: hook.container ?? defaultContainer ?? "",
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
        container: hook.container ?? defaultContainer ?? "",
        command: formatHookCommand(hook.command),
        "on-error": hook.onError,
        ...(hook.execTimeout ? { "exec-timeout": hook.execTimeout } : {}),
        ...(hook.waitTimeout ? { "wait-timeout": hook.waitTimeout } : {}),
        ...(hook.waitForReady !== undefined ? { "wait-for-ready": String(hook.waitForReady) } : {}),
      };
    }
  }
}

/** Does the pod carry a hook of this phase (the legacy un-prefixed keys count as pre-backup)? */
export function podHasPhase(annotations: Record<string, string>, phase: HookPhase): boolean {
  const prefixes = phase === "preBackup" ? [HOOK_PREFIX.preBackup, LEGACY_BACKUP_HOOK_PREFIX] : [HOOK_PREFIX[phase]];
  return Object.keys(annotations).some((key) => prefixes.some((prefix) => key.startsWith(prefix)));
}

const sameValues = (a: Record<string, string>, b: Record<string, string> | undefined) =>
  b !== undefined && Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * Hooks that must come from one source: a pre-backup hook that quiesces (or dumps) and the
 * post-backup hook that undoes it belong together, so a pod keeping its own pre hook (say, a
 * restored pod's old one) must not receive the policy's post hook.
 */
const HOOK_PAIRS: readonly (readonly ExecPhase[])[] = [["preBackup", "postBackup"], ["postRestore"]];

export interface PolicyHooks {
  warnings: string[];
  /** The phases written (MANAGED_ANNOTATION groups, e.g. "pre-backup"). */
  managed: string[];
}

/**
 * Writes the policy's exec hooks into `annotations` (mutated in place), pair by pair, unless the
 * pod sets a hook of that pair itself. A hook naming no container runs in the application
 * container (`app`), not an injected proxy. Init-restore hooks are not annotations: see
 * restoreHook.ts. `annotations` must not hold the hooks app-snapshots wrote earlier.
 */
export function applyPolicyHooks(pod: Pod, annotations: Record<string, string>, hooks: Hooks, policy: string, app: AppContainer | undefined): PolicyHooks {
  const warnings: string[] = [];
  const managed: string[] = [];
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  let usedDefault = false;
  for (const pair of HOOK_PAIRS) {
    const values = new Map(pair.map((phase) => [phase, hookValues(phase, hooks, app?.container.name)] as const));
    const fromPolicy = pair.filter((phase) => values.get(phase) !== undefined);
    if (fromPolicy.length === 0) continue;
    const fromPod = pair.filter((phase) => podHasPhase(annotations, phase));
    const titles = (phases: readonly HookPhase[]) => phases.map((phase) => PHASE_TITLE[phase]).join(" and ");
    if (fromPod.length > 0) {
      const same = pair.every((phase) => (values.get(phase) === undefined ? !podHasPhase(annotations, phase) : sameValues(values.get(phase)!, hookAnnotationsOf(annotations, phase))));
      if (!same) {
        const pairNote = pair.length > 1 ? " (the hooks of one pair come from one source)" : "";
        warnings.push(`pod sets its own ${titles(fromPod)} hook annotations; the ${titles(fromPolicy)} hook${fromPolicy.length > 1 ? "s" : ""} of policy ${policy} ${fromPolicy.length > 1 ? "were" : "was"} not applied${pairNote}`);
      }
      continue;
    }
    const missing = fromPolicy.filter((phase) => !containers.includes(values.get(phase)!.container!));
    if (missing.length > 0) {
      const skipped = pair.length > 1 && fromPolicy.length > 1 ? ` (nor its ${titles(fromPolicy.filter((p) => !missing.includes(p)))} hook: one pair, one source)` : "";
      for (const phase of missing) {
        warnings.push(`${PHASE_TITLE[phase]} hook of policy ${policy} not written: the pod has no container "${values.get(phase)!.container}"${skipped}`);
      }
      continue;
    }
    for (const phase of fromPolicy) {
      for (const [key, value] of Object.entries(values.get(phase)!)) annotations[HOOK_PREFIX[phase] + key] = value;
      managed.push(PHASE_TITLE[phase]);
      if (hooks[phase]?.container === undefined) usedDefault = true;
    }
  }
  if (usedDefault && app?.note) warnings.push(`hooks of policy ${policy} run in ${app.note}`);
  return { warnings, managed };
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
