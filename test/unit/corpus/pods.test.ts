import { describe, expect, it } from "vitest";
import { admit } from "../../../src/admission/admit.js";
import { buildClusterState } from "../../../src/admission/state.js";
import { workloadReport } from "../../../src/commands/explainReport.js";
import { decidePod } from "../../../src/pods/decide.js";
import type { Container, Pod } from "../../../src/pods/pod.js";
import { admitObject, controllerPod, describeObject, load, patchOperations, patchedPod, reviewOf, VELERO_USER, type KubeObject } from "./load.js";
import { isMemoryBacked, veleroTakes } from "./veleroModel.js";

/**
 * The pod webhook on the pod templates of common charts (test/fixtures/corpus/charts), with the
 * policies of test/fixtures/corpus/policies. Expectations come from issue 14 and from what Velero does
 * with the annotations (./veleroModel.ts), not from today's rules.
 */
const policies = load("policies/policies.yaml");
const cluster = buildClusterState({ objects: policies });

/** The controllers that create these pods, as the apiserver names them in userInfo. */
const controllerUser = (kind: string | undefined) => ({
  username: `system:serviceaccount:kube-system:${kind === "StatefulSet" ? "statefulset" : kind === "CronJob" || kind === "Job" ? "job" : "replicaset"}-controller`,
  groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
});

interface PodCase {
  file: string;
  /** Document index in the file. */
  index?: number;
  /** The volumes Velero must take, in pod order, whichever mode the Backup uses. */
  takes: string[];
  /** The container the policy's pre- and post-backup hooks must run in. */
  hookContainer?: string;
}

const CASES: PodCase[] = [
  { file: "charts/postgresql.yaml", takes: ["data"], hookContainer: "postgresql" },
  // The pod's own backup-volumes names no volume of it: the policy's selection applies, never an empty list.
  { file: "charts/postgresql-stale-annotation.yaml", takes: ["data"], hookContainer: "postgresql" },
  { file: "charts/redis.yaml", takes: ["redis-data"] },
  { file: "charts/mariadb.yaml", takes: ["data"], hookContainer: "mariadb" },
  { file: "charts/mongodb.yaml", takes: ["datadir"], hookContainer: "mongodb" },
  { file: "charts/rabbitmq.yaml", takes: ["data"] },
  { file: "charts/grafana.yaml", takes: ["storage"], hookContainer: "grafana" },
  // The pod names the claim ("grafana") where Velero wants the volume ("storage").
  { file: "charts/grafana-claim-name-annotation.yaml", takes: ["storage"] },
  { file: "charts/prometheus.yaml", takes: ["prometheus-kps-prometheus-db"] },
  { file: "charts/secrets-store.yaml", takes: ["uploads", "tmp"] },
  { file: "charts/native-sidecar.yaml", takes: ["data", "logs", "scratch"] },
  { file: "charts/mesh-istio.yaml", index: 0, takes: ["data"], hookContainer: "postgres" },
  { file: "charts/mesh-istio.yaml", index: 1, takes: ["data"], hookContainer: "ledger" },
  { file: "charts/mesh-linkerd.yaml", index: 0, takes: ["data"], hookContainer: "inventory" },
  { file: "charts/mesh-linkerd.yaml", index: 1, takes: ["data"], hookContainer: "shipping" },
];

interface Admitted {
  label: string;
  manifest: KubeObject;
  input: Pod;
  output: Pod;
  warnings: string[];
}

function admitCase(file: string, index = 0): Admitted {
  const manifest = load(file)[index]!;
  const input = controllerPod(manifest);
  const response = admit(reviewOf(input, "CREATE", controllerUser(manifest.kind)), cluster);
  return { label: describeObject(file, manifest), manifest, input, output: patchedPod(input, response), warnings: response.response.warnings ?? [] };
}

/** What the failure text shows: the Velero annotations the pod ended with, and the warnings. */
function decided(a: Admitted): string {
  const annotations = Object.entries(a.output.metadata?.annotations ?? {}).filter(([k]) => /velero\.io\/|appsnapshots\.io\//.test(k));
  return `${a.label}\n  annotations: ${JSON.stringify(Object.fromEntries(annotations))}\n  warnings: ${JSON.stringify(a.warnings)}`;
}

const initOnlyVolumes = (pod: Pod): string[] => {
  const regular = new Set((pod.spec?.containers ?? []).flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  const init = new Set((pod.spec?.initContainers ?? []).flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  return [...init].filter((name) => !regular.has(name));
};

const listed = (pod: Pod, key: string) => (pod.metadata?.annotations?.[key] ?? "").split(",").filter((s) => s !== "");

describe("corpus: chart pods through the pod webhook", () => {
  const admitted = CASES.map((c) => ({ c, a: admitCase(c.file, c.index) }));

  for (const { c, a } of admitted) {
    it(`${a.label}: Velero takes [${c.takes.join(", ")}] in opt-in and in opt-out mode`, () => {
      const taken = { "opt-in": veleroTakes(a.output, "opt-in"), "opt-out": veleroTakes(a.output, "opt-out") };
      expect(taken, decided(a)).toEqual({ "opt-in": c.takes, "opt-out": c.takes });
    });
  }

  it("a memory-backed emptyDir (dshm, config-out, istio-envoy, linkerd identity) is never taken, in either mode", () => {
    const offenders = admitted.flatMap(({ a }) =>
      (["opt-in", "opt-out"] as const).flatMap((mode) => veleroTakes(a.output, mode).filter((v) => isMemoryBacked(a.output, v)).map((v) => `${a.label}: ${v} taken in ${mode} mode\n${decided(a)}`)),
    );
    expect(offenders).toEqual([]);
  });

  it("the Postgres chart's data volume is selected and /dev/shm is not", () => {
    const a = admitted.find(({ c }) => c.file === "charts/postgresql.yaml")!.a;
    expect({ selected: listed(a.output, "backup.velero.io/backup-volumes") }, decided(a)).toEqual({ selected: ["data"] });
  });

  it("a volume only init containers or native sidecars mount is never selected (Velero skips it: backupper.go checks spec.containers)", () => {
    const offenders = admitted.flatMap(({ a }) => {
      const selected = listed(a.output, "backup.velero.io/backup-volumes");
      return initOnlyVolumes(a.output)
        .filter((v) => selected.includes(v))
        .map((v) => `${a.label}: init-only volume ${v} selected\n${decided(a)}`);
    });
    expect(offenders).toEqual([]);
  });

  for (const { c, a } of admitted.filter(({ c }) => c.hookContainer)) {
    it(`${a.label}: the backup hooks run in the application container ${c.hookContainer}`, () => {
      const annotations = a.output.metadata?.annotations ?? {};
      expect(
        { pre: annotations["pre.hook.backup.velero.io/container"], post: annotations["post.hook.backup.velero.io/container"] },
        decided(a),
      ).toEqual({ pre: c.hookContainer, post: c.hookContainer });
    });
  }

  for (const { a } of admitted) {
    it(`${a.label}: admitting the webhook's own output again changes nothing and warns nothing new`, () => {
      const again = admit(reviewOf(a.output, "CREATE", controllerUser(a.manifest.kind)), cluster);
      const newWarnings = (again.response.warnings ?? []).filter((w) => !a.warnings.includes(w));
      expect({ patch: patchOperations(again), newWarnings }, decided(a)).toEqual({ patch: [], newWarnings: [] });
    });
  }
});

describe("corpus: app-snapshots called before the mesh injector, then reinvoked (reinvocationPolicy: IfNeeded)", () => {
  /**
   * The apiserver calls mutating webhooks in name order; when app-snapshots runs first, the mesh injector
   * adds its containers and volumes after it, and app-snapshots is called again with the result. The
   * pod before injection is the fixture without what the injector added (its *-status annotation and
   * the proxy containers and volumes); after injection it is the fixture plus what app-snapshots wrote.
   */
  const INJECTED = /^(istio-|linkerd-|workload-socket$|credential-socket$|workload-certs$|istiod-ca-cert$)/;
  const MESH_LABEL = /istio\.io|linkerd\.io/;
  const withoutMesh = (pod: Pod): Pod => ({
    ...pod,
    metadata: {
      ...pod.metadata,
      labels: Object.fromEntries(Object.entries(pod.metadata?.labels ?? {}).filter(([k]) => !MESH_LABEL.test(k))),
      annotations: Object.fromEntries(Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => !MESH_LABEL.test(k) && !k.startsWith("kubectl.kubernetes.io/") && !k.startsWith("prometheus.io/"))),
    },
    spec: {
      ...pod.spec,
      containers: pod.spec?.containers?.filter((c) => !INJECTED.test(c.name)),
      initContainers: pod.spec?.initContainers?.filter((c) => !INJECTED.test(c.name)),
      volumes: pod.spec?.volumes?.filter((v) => !INJECTED.test(v.name)),
    },
  });

  for (const [file, index, app] of [
    ["charts/mesh-istio.yaml", 0, "postgres"],
    ["charts/mesh-linkerd.yaml", 0, "inventory"],
  ] as const) {
    const injected = controllerPod(load(file)[index]!);
    const label = describeObject(file, load(file)[index]!);
    const first = admit(reviewOf(withoutMesh(injected), "CREATE", controllerUser("Deployment")), cluster);
    const ours = patchedPod(withoutMesh(injected), first).metadata?.annotations ?? {};
    const reinvoked: Pod = { ...injected, metadata: { ...injected.metadata, annotations: { ...(injected.metadata?.annotations ?? {}), ...ours } } };
    const second = admit(reviewOf(reinvoked, "CREATE", controllerUser("Deployment")), cluster);
    const a: Admitted = { label: `${label} (reinvoked after injection)`, manifest: reinvoked, input: reinvoked, output: patchedPod(reinvoked, second), warnings: second.response.warnings ?? [] };

    it(`${a.label}: Velero still takes only [data] in both modes (the injector's volumes are not taken in opt-out mode)`, () => {
      expect({ "opt-in": veleroTakes(a.output, "opt-in"), "opt-out": veleroTakes(a.output, "opt-out") }, decided(a)).toEqual({ "opt-in": ["data"], "opt-out": ["data"] });
    });

    it(`${a.label}: the hooks stay in ${app}, and nothing is said about the annotations app-snapshots wrote itself`, () => {
      const annotations = a.output.metadata?.annotations ?? {};
      const aboutOwn = a.warnings.filter((w) => /sets (its own|.*itself)|pod sets|user annotation/i.test(w));
      expect({ pre: annotations["pre.hook.backup.velero.io/container"], aboutOwn }, decided(a)).toEqual({ pre: app, aboutOwn: [] });
    });
  }
});

describe("corpus: a hand-written backup-volumes naming the claim (charts/grafana-claim-name-annotation.yaml)", () => {
  it("the claim name is mapped to its volume with a warning that names both", () => {
    const a = admitCase("charts/grafana-claim-name-annotation.yaml");
    expect({ selected: listed(a.output, "backup.velero.io/backup-volumes") }, decided(a)).toEqual({ selected: ["storage"] });
    expect(a.warnings.filter((w) => w.includes("grafana") && w.includes("storage")), decided(a)).not.toEqual([]);
  });
});

describe("corpus: explain says why a volume is not backed up", () => {
  const verdict = (file: string, volume: string) => {
    const manifest = load(file)[0]!;
    const report = workloadReport(manifest, cluster, "default");
    return { report, found: report?.volumes.find((v) => v.name === volume) };
  };

  for (const [file, volume, why] of [
    ["charts/postgresql.yaml", "dshm", /memory|tmpfs|shm/i],
    ["charts/prometheus.yaml", "config-out", /memory|tmpfs/i],
    ["charts/redis.yaml", "config-tmp", /init/i],
    ["charts/secrets-store.yaml", "secrets-store-inline", /csi|source|policy|select/i],
  ] as const) {
    it(`${file} ${volume}: not backed up in either mode, and the reason says ${String(why)}`, () => {
      const { report, found } = verdict(file, volume);
      const reason = found?.optOut.reason ?? "";
      expect({ optIn: found?.optIn.backedUp, optOut: found?.optOut.backedUp, reasonSaysWhy: why.test(reason), reason }, JSON.stringify(report?.volumes, null, 1)).toMatchObject({
        optIn: false,
        optOut: false,
        reasonSaysWhy: true,
      });
    });
  }
});

describe("corpus: a CronJob's backup job (pg_dumpall to a PVC)", () => {
  const file = "charts/pg-backup-cronjob.yaml";
  const manifest = load(file)[0]!;

  it("its pods get no backup-volumes annotation: Velero never takes volumes of pods that are not Running", () => {
    const input = controllerPod(manifest);
    const response = admitObject(input, cluster, controllerUser("CronJob"));
    const a: Admitted = { label: describeObject(file, manifest), manifest, input, output: patchedPod(input, response), warnings: response.response.warnings ?? [] };
    expect(a.output.metadata?.annotations?.["backup.velero.io/backup-volumes"], decided(a)).toBeUndefined();
  });

  it("explain says so for the CronJob manifest: no volume backed up in either mode, and why", () => {
    const report = workloadReport(manifest, cluster, "default");
    const verdicts = (report?.volumes ?? []).map((v) => ({ name: v.name, optIn: v.optIn.backedUp, optOut: v.optOut.backedUp }));
    expect({ verdicts, set: report?.annotationsSet.filter((a) => a.key === "backup.velero.io/backup-volumes" && a.value !== "") }, JSON.stringify(report, null, 1)).toEqual({
      verdicts: verdicts.map((v) => ({ ...v, optIn: false, optOut: false })),
      set: [],
    });
    const datadir = report?.volumes.find((v) => v.name === "datadir");
    expect(datadir?.optOut.reason, JSON.stringify(datadir)).toMatch(/Job|run-to-completion|Running/i);
  });
});

describe("corpus: restored pods (Velero's restore, then Istio's injector)", () => {
  const policyPre = JSON.stringify(["/bin/sh", "-c", "PGPASSWORD=$(cat $POSTGRES_PASSWORD_FILE) pg_dump -U postgres -Fc postgres > /bitnami/postgresql/backup.dump"]);
  const policyPost = JSON.stringify(["rm", "-f", "/bitnami/postgresql/backup.dump"]);
  const PID_FILE = "/bitnami/postgresql/data/postmaster.pid";

  for (const file of ["restored/postgresql-restored.yaml", "restored/postgresql-restored-velero-hook.yaml"]) {
    const manifest = load(file)[0]!;
    const input = structuredClone<Pod>(manifest);
    // Velero's server creates restored pods.
    const response = admit(reviewOf(manifest, "CREATE", VELERO_USER), cluster);
    const a: Admitted = { label: describeObject(file, manifest), manifest, input, output: patchedPod(input, response), warnings: response.response.warnings ?? [] };
    const inits = (a.output.spec?.initContainers ?? []).map((c) => c.name);

    it(`${a.label}: restore-wait stays the first init container`, () => {
      expect(inits[0], `${decided(a)}\n  init containers: ${inits.join(", ")}`).toBe("restore-wait");
    });

    it(`${a.label}: the policy's clear-stale-pid hook really runs: once, right after restore-wait, on the data volume, restricted-compliant`, () => {
      const hooks = (a.output.spec?.initContainers ?? []).filter((c) => JSON.stringify([...((c.command as string[]) ?? []), ...((c.args as string[]) ?? [])]).includes("postmaster.pid"));
      const hook: Container | undefined = hooks[0];
      const mount = hook?.volumeMounts?.find((m) => m.mountPath !== undefined && (PID_FILE === m.mountPath || PID_FILE.startsWith(m.mountPath.replace(/\/?$/, "/"))));
      const context = { ...(a.output.spec?.securityContext ?? {}), ...(hook?.securityContext ?? {}) } as Record<string, unknown>;
      const capabilities = (hook?.securityContext?.capabilities as { drop?: string[] } | undefined)?.drop ?? [];
      const seccomp = (context.seccompProfile as { type?: string } | undefined)?.type;
      expect(
        {
          count: hooks.length,
          position: hook ? inits.indexOf(hook.name) : -1,
          volume: mount?.name,
          allowPrivilegeEscalation: hook?.securityContext?.allowPrivilegeEscalation,
          dropsAll: capabilities.includes("ALL"),
          runAsNonRoot: context.runAsNonRoot,
          seccomp: seccomp === "RuntimeDefault" || seccomp === "Localhost",
        },
        `${decided(a)}\n  init containers: ${JSON.stringify(a.output.spec?.initContainers?.map((c) => ({ name: c.name, volumeMounts: c.volumeMounts, securityContext: c.securityContext })))}`,
      ).toEqual({ count: 1, position: 1, volume: "data", allowPrivilegeEscalation: false, dropsAll: true, runAsNonRoot: true, seccomp: true });
    });

    it(`${a.label}: when it is backed up again, Velero takes only [data] in either mode`, () => {
      expect({ "opt-in": veleroTakes(a.output, "opt-in"), "opt-out": veleroTakes(a.output, "opt-out") }, decided(a)).toEqual({ "opt-in": ["data"], "opt-out": ["data"] });
    });

    it(`${a.label}: pre- and post-backup hooks come from one source (never the pod's old pre hook with the policy's post hook)`, () => {
      const before = input.metadata?.annotations ?? {};
      const after = a.output.metadata?.annotations ?? {};
      const source = (value: string | undefined, own: string | undefined, policy: string) =>
        value === undefined ? "none" : value === own ? "pod" : value === policy ? "policy" : "other";
      const pre = source(after["pre.hook.backup.velero.io/command"], before["pre.hook.backup.velero.io/command"], policyPre);
      const post = source(after["post.hook.backup.velero.io/command"], before["post.hook.backup.velero.io/command"], policyPost);
      const mixed = (pre === "pod" && post === "policy") || (pre === "policy" && post === "pod");
      expect({ pre, post, mixed }, decided(a)).toMatchObject({ mixed: false });
    });

    it(`${a.label}: admitting the webhook's own output again changes nothing and warns nothing new`, () => {
      const again = admit(reviewOf(a.output, "CREATE", VELERO_USER), cluster);
      const newWarnings = (again.response.warnings ?? []).filter((w) => !a.warnings.includes(w));
      expect({ patch: patchOperations(again), newWarnings }, decided(a)).toEqual({ patch: [], newWarnings: [] });
    });
  }
});

describe("corpus: a restored pod where app-snapshots runs before Istio's injector, then is reinvoked", () => {
  const file = "restored/postgresql-restored.yaml";
  const injected: Pod = load(file)[0]!;
  const istioInit = injected.spec!.initContainers!.find((c) => c.name === "istio-init")!;
  const beforeIstio: Pod = { ...injected, spec: { ...injected.spec, initContainers: injected.spec!.initContainers!.filter((c) => c.name !== "istio-init") } };
  const first = patchedPod(beforeIstio, admit(reviewOf(beforeIstio, "CREATE", VELERO_USER), cluster));
  // Istio's injector puts istio-init at the front of whatever it gets.
  const afterIstio: Pod = { ...first, spec: { ...first.spec, initContainers: [istioInit, ...(first.spec?.initContainers ?? [])] } };
  const second = admit(reviewOf(afterIstio, "CREATE", VELERO_USER), cluster);
  const output = patchedPod(afterIstio, second);
  const names = (output.spec?.initContainers ?? []).map((c) => c.name);

  it(`${file}: restore-wait first, the clear-stale-pid hook once and right after it`, () => {
    const pidHooks = (output.spec?.initContainers ?? []).filter((c) => JSON.stringify(c.command ?? []).includes("postmaster.pid")).length;
    expect({ first: names[0], second: names[1], pidHooks }, `init containers: ${names.join(", ")}; warnings: ${JSON.stringify(second.response.warnings ?? [])}`).toEqual({
      first: "restore-wait",
      second: "clear-stale-pid",
      pidHooks: 1,
    });
  });
});

describe("corpus: a pathological policy glob", () => {
  it("*a*a*a*a*a*a*b against a 60-character volume name decides in under 10 ms (minimum of 5 runs)", () => {
    const name = "a".repeat(60);
    const state = buildClusterState({
      objects: [
        {
          apiVersion: "appsnapshots.io/v1alpha1",
          kind: "SnapshotPolicy",
          metadata: { name: "globs", namespace: "perf" },
          spec: { volumes: { include: ["*a*a*a*a*a*a*b"] } },
        },
      ],
    });
    expect(state.problems).toEqual([]);
    const pod: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "glob-victim", namespace: "perf" },
      spec: { containers: [{ name: "app", image: "busybox", volumeMounts: [{ name, mountPath: "/data" }] }], volumes: [{ name, emptyDir: {} }] },
    };
    const runs: number[] = [];
    let selected: string | undefined;
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      selected = decidePod(pod, "perf", state).pod.metadata?.annotations?.["backup.velero.io/backup-volumes"];
      runs.push(performance.now() - start);
      if (runs.at(-1)! > 1000) break; // a backtracking matcher takes seconds per run: one is enough to fail
    }
    expect(selected ?? "").toBe(""); // the name has no "b": nothing matches
    expect(Math.min(...runs), `runs (ms): ${runs.map((r) => r.toFixed(1)).join(", ")}`).toBeLessThan(10);
  });
});
