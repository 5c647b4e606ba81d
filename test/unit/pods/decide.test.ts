import { describe, expect, it } from "vitest";
import { decidePod } from "../../../src/pods/decide.js";
import type { Pod } from "../../../src/pods/pod.js";
import { fixturePod, policyYaml, stateFrom } from "./support.js";

const annotationsOf = (pod: Pod) => pod.metadata?.annotations ?? {};

describe("rule 1: which policy", () => {
  const state = stateFrom(
    policyYaml("b-web", "podSelector: { matchLabels: { app: web } }") +
      policyYaml("a-everything", "volumes: { mode: None }") +
      policyYaml("other-ns", "{}", "elsewhere") +
      `apiVersion: appsnapshots.io/v1alpha1
kind: ClusterSnapshotPolicy
metadata: { name: prod-only }
spec: { namespaceSelector: { matchLabels: { env: prod } } }
---
apiVersion: appsnapshots.io/v1alpha1
kind: ClusterSnapshotPolicy
metadata: { name: all }
spec: {}
---
apiVersion: v1
kind: Namespace
metadata: { name: payments, labels: { env: prod } }
`,
  );

  it("takes namespaced policies first, in name order, and names the ignored ones", () => {
    const decision = decidePod(fixturePod("istio-sidecar"), "shop", state);
    expect(decision.policy).toBe("shop/a-everything");
    expect(decision.warnings).toContain("policy shop/a-everything applied; also matching, ignored: shop/b-web, cluster/all");
  });

  it("falls through to cluster policies when no namespaced policy matches, honouring namespaceSelector", () => {
    const pod = fixturePod("postgres-statefulset");
    expect(decidePod(pod, "payments", state).policy).toBe("cluster/all");
    expect(decidePod(pod, "payments", state).warnings).toContain("policy cluster/all applied; also matching, ignored: cluster/prod-only");
    expect(decidePod(pod, "dev", state).warnings.join()).not.toContain("prod-only");
  });

  it("matches podSelector expressions", () => {
    const s = stateFrom(policyYaml("db", "podSelector: { matchExpressions: [{ key: app, operator: In, values: [postgres, mysql] }] }"));
    expect(decidePod(fixturePod("postgres-statefulset"), "shop", s).policy).toBe("shop/db");
    expect(decidePod(fixturePod("istio-sidecar"), "shop", s).policy).toBeUndefined();
  });

  it("with no match: no change at all", () => {
    const s = stateFrom(policyYaml("nothing", "podSelector: { matchLabels: { app: none } }"));
    const pod = fixturePod("postgres-statefulset");
    const decision = decidePod(pod, "shop", s);
    expect(decision.policy).toBeUndefined();
    expect(decision.pod).toEqual(pod);
    expect(decision.warnings).toEqual([]);
  });
});

describe("rule 2: selected volumes", () => {
  it("lists PVC and emptyDir volumes that containers mount, in pod order, never projected/configMap", () => {
    const decision = decidePod(fixturePod("postgres-statefulset"), "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("data,scratch");
  });

  it("leaves out hostPath, block-only, unmounted and default-token volumes even when their type is allowed", () => {
    const decision = decidePod(fixturePod("hostpath-and-block"), "monitoring", stateFrom(policyYaml("p", "{}", "monitoring")));
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("spool");
  });

  it("applies include/exclude globs and the sources list", () => {
    const pod = fixturePod("istio-sidecar");
    const globs = stateFrom(policyYaml("p", 'volumes: { include: ["*"], exclude: ["istio-*"] }'));
    expect(annotationsOf(decidePod(pod, "shop", globs).pod)["backup.velero.io/backup-volumes"]).toBe("uploads,cache");
    const pvcOnly = stateFrom(policyYaml("p", "volumes: { sources: [persistentVolumeClaim] }"));
    expect(annotationsOf(decidePod(pod, "shop", pvcOnly).pod)["backup.velero.io/backup-volumes"]).toBe("uploads");
    const named = stateFrom(policyYaml("p", 'volumes: { include: ["up?oads", "cach*"] }'));
    expect(annotationsOf(decidePod(pod, "shop", named).pod)["backup.velero.io/backup-volumes"]).toBe("uploads,cache");
  });

  it("writes no volume annotation when nothing is selected", () => {
    const decision = decidePod(fixturePod("istio-sidecar"), "shop", stateFrom(policyYaml("p", 'volumes: { include: ["nothing"] }')));
    expect(annotationsOf(decision.pod)).not.toHaveProperty("backup.velero.io/backup-volumes");
    expect(annotationsOf(decision.pod)["appsnapshots.io/policy"]).toBe("shop/p");
  });

  it.each(["OptIn", "OptOut"])("%s writes both lists, so the pod gets the same volumes in either Velero mode", (mode) => {
    const decision = decidePod(fixturePod("istio-sidecar"), "shop", stateFrom(policyYaml("p", `volumes: { mode: ${mode}, exclude: ["istio-*", "cache"] }`)));
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("uploads");
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes-excludes"]).toBe("cache,istio-envoy,istio-data");
    for (const verdict of decision.volumes) expect(verdict.optIn.backedUp).toBe(verdict.optOut.backedUp);
    expect(decision.volumes.filter((v) => v.optOut.backedUp).map((v) => v.name)).toEqual(["uploads"]);
  });

  it("None writes no volume annotation but still records the policy", () => {
    const decision = decidePod(fixturePod("postgres-statefulset"), "shop", stateFrom(policyYaml("p", "volumes: { mode: None }")));
    expect(annotationsOf(decision.pod)).toEqual({ "appsnapshots.io/policy": "shop/p" });
    expect(decision.volumes.find((v) => v.name === "data")).toMatchObject({
      optIn: { backedUp: false, reason: "not listed in backup.velero.io/backup-volumes: policy shop/p has volumes.mode None and writes no volume annotations" },
      optOut: { backedUp: true },
    });
  });
});

describe("rule 3: user annotations win, canonicalised", () => {
  it("trims, de-duplicates, maps claim names and drops configMap volumes, each with a warning; excludes the rest", () => {
    const decision = decidePod(fixturePod("handwritten-annotations"), "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("data");
    const key = "backup.velero.io/backup-volumes";
    expect(decision.warnings).toEqual(
      expect.arrayContaining([
        `${key}: trimmed spaces around "data" (Velero would look for a volume named " data")`,
        `${key}: dropped duplicate "data"`,
        `${key}: "mysql-data-pvc" is a claim name; replaced by "data", the pod volume that mounts it (Velero reads volume names)`,
        `${key}: dropped "config": Velero never backs up configMap volumes`,
        "pod sets backup.velero.io/backup-volumes itself; policy shop/p would also back up: backup",
      ]),
    );
    // The user's list decides in both modes: the other volume is excluded for opt-out Backups.
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes-excludes"]).toBe("backup");
  });

  it("keeps an already canonical user list as it is", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.annotations = { "backup.velero.io/backup-volumes": "data" };
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "{}")));
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("data");
    expect(decision.warnings).toEqual(["pod sets backup.velero.io/backup-volumes itself; policy shop/p would also back up: scratch"]);
  });
});

describe("rule 4: hooks from the policy", () => {
  const hooks = `hooks:
  preBackup: { command: [/bin/sh, -c, "pg_dump -Fc app > /var/lib/postgresql/data/dump"], timeout: 5m }
  postBackup: { container: postgres, command: [rm, /var/lib/postgresql/data/dump], onError: Continue }
  postRestore: { container: postgres, command: [/bin/sh, -c, "pg_restore /var/lib/postgresql/data/dump"], execTimeout: 10m, waitTimeout: 5m, waitForReady: true }
  initRestore: { image: busybox:1.36, name: prepare, command: [sh, -c, "rm -f /data/postmaster.pid"], runAsUser: 999 }`;

  it("writes every exec phase as JSON-array commands with explicit on-error and the first container by default; the init-restore hook as our own annotation", () => {
    const decision = decidePod(fixturePod("postgres-statefulset"), "shop", stateFrom(policyYaml("p", hooks)));
    const { "appsnapshots.io/restore-hook": restoreHook, ...annotations } = annotationsOf(decision.pod);
    // Velero would build the init container from init.hook.restore.velero.io/* without mounts: none is written.
    expect(Object.keys(annotations).filter((k) => k.startsWith("init.hook.restore.velero.io/"))).toEqual([]);
    expect(JSON.parse(restoreHook!)).toMatchObject({
      name: "prepare",
      image: "busybox:1.36",
      command: ["sh", "-c", "rm -f /data/postmaster.pid"],
      volumeMounts: [{ name: "data", mountPath: "/var/lib/postgresql/data" }, { name: "scratch", mountPath: "/tmp" }],
      securityContext: { runAsUser: 999, runAsNonRoot: true, allowPrivilegeEscalation: false },
    });
    expect(annotations).toEqual({
      "backup.velero.io/backup-volumes": "data,scratch",
      "pre.hook.backup.velero.io/container": "postgres",
      "pre.hook.backup.velero.io/command": '["/bin/sh","-c","pg_dump -Fc app > /var/lib/postgresql/data/dump"]',
      "pre.hook.backup.velero.io/on-error": "Fail",
      "pre.hook.backup.velero.io/timeout": "5m",
      "post.hook.backup.velero.io/container": "postgres",
      "post.hook.backup.velero.io/command": '["rm","/var/lib/postgresql/data/dump"]',
      "post.hook.backup.velero.io/on-error": "Continue",
      "post.hook.restore.velero.io/container": "postgres",
      "post.hook.restore.velero.io/command": '["/bin/sh","-c","pg_restore /var/lib/postgresql/data/dump"]',
      "post.hook.restore.velero.io/on-error": "Continue",
      "post.hook.restore.velero.io/exec-timeout": "10m",
      "post.hook.restore.velero.io/wait-timeout": "5m",
      "post.hook.restore.velero.io/wait-for-ready": "true",
      "appsnapshots.io/policy": "shop/p",
      "appsnapshots.io/managed": "backup-volumes,pre-backup,post-backup,post-restore,restore-hook",
    });
    expect(decision.warnings).toEqual([]);
  });

  it("takes the pre/post-backup pair from one source: a pod with its own pre hook gets neither policy half", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.annotations = { "pre.hook.backup.velero.io/command": '["sync"]', "pre.hook.backup.velero.io/on-error": "Fail" };
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", hooks)));
    expect(annotationsOf(decision.pod)["pre.hook.backup.velero.io/command"]).toBe('["sync"]');
    expect(annotationsOf(decision.pod)).not.toHaveProperty("pre.hook.backup.velero.io/timeout");
    expect(annotationsOf(decision.pod)).not.toHaveProperty("post.hook.backup.velero.io/command");
    expect(annotationsOf(decision.pod)["post.hook.restore.velero.io/command"]).toBe('["/bin/sh","-c","pg_restore /var/lib/postgresql/data/dump"]');
    expect(decision.warnings).toEqual([
      "pod sets its own pre-backup hook annotations; the pre-backup and post-backup hooks of policy shop/p were not applied (the hooks of one pair come from one source)",
    ]);
  });

  it("a restored pod keeping its old post hook does not receive the policy's pre hook", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.labels!["velero.io/restore-name"] = "r1";
    pod.metadata!.annotations = { "post.hook.backup.velero.io/command": '["old-unfreeze"]' };
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", "hooks: { preBackup: { command: [freeze] } }")));
    expect(Object.keys(annotationsOf(decision.pod)).filter((k) => k.startsWith("pre.hook"))).toEqual([]);
    expect(decision.warnings).toEqual([
      "pod sets its own post-backup hook annotations; the pre-backup hook of policy shop/p was not applied (the hooks of one pair come from one source)",
    ]);
  });

  it("treats legacy hook.backup.velero.io keys as the pod's own pre-backup hook", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.annotations = { "hook.backup.velero.io/command": '["sync"]' };
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", hooks)));
    expect(annotationsOf(decision.pod)).not.toHaveProperty("pre.hook.backup.velero.io/command");
  });

  it("skips a hook naming a container the pod does not have, with a warning", () => {
    const decision = decidePod(fixturePod("istio-sidecar"), "shop", stateFrom(policyYaml("p", "hooks: { preBackup: { container: postgres, command: [sync] } }")));
    expect(Object.keys(annotationsOf(decision.pod)).filter((k) => k.includes("hook"))).toEqual([]);
    expect(decision.warnings).toEqual(['pre-backup hook of policy shop/p not written: the pod has no container "postgres"']);
  });

  it("defaults on-error to Fail for backup hooks and Continue for restore hooks", () => {
    const decision = decidePod(
      fixturePod("postgres-statefulset"),
      "shop",
      stateFrom(policyYaml("p", "hooks: { postBackup: { command: [a] }, postRestore: { command: [b] } }")),
    );
    expect(annotationsOf(decision.pod)["post.hook.backup.velero.io/on-error"]).toBe("Fail");
    expect(annotationsOf(decision.pod)["post.hook.restore.velero.io/on-error"]).toBe("Continue");
  });
});

describe("rule 5: lint of hand-written hook annotations", () => {
  it("warns about every well-known mistake, even when no policy applies", () => {
    const decision = decidePod(fixturePod("handwritten-annotations"), "shop", stateFrom(""));
    expect(decision.pod).toEqual(fixturePod("handwritten-annotations"));
    expect(decision.warnings).toEqual([
      'pre.hook.backup.velero.io/command has spaces but is not a JSON array: Velero runs "/bin/sh -c "mysqldump --all-databases > ..." as ONE program name. Use ["/bin/sh","-c","..."]',
      'pre.hook.backup.velero.io/on-error: "fail" is neither Continue nor Fail (case-sensitive); Velero treats it as unset',
      'pre.hook.backup.velero.io/timeout: "5 minutes" is not a Go duration (e.g. 30s, 5m, 1h30m); Velero ignores it and uses its default',
      "post.hook.restore.velero.io/command is not valid JSON (single quotes?); Velero runs the whole text as one program name. Use [\"cmd\",\"arg\"]",
      "post.hook.restore.velero.io/timeout does not exist and is ignored (Velero waits the default 30s); use post.hook.restore.velero.io/exec-timeout",
      "init.hook.restore.velero.io/container-image without init.hook.restore.velero.io/command: Velero <= 1.18.2 panics restoring this pod; add a command",
    ]);
  });

  it("warns about keys Velero does not read and non-boolean wait-for-ready", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.annotations = { "pre.hook.backup.velero.io/onError": "Fail", "post.hook.restore.velero.io/wait-for-ready": "yes" };
    expect(decidePod(pod, "shop", stateFrom("")).warnings).toEqual([
      "pre.hook.backup.velero.io/onError is not a key Velero reads; it is ignored (known: container, command, on-error, timeout)",
      'post.hook.restore.velero.io/wait-for-ready: "yes" is not a boolean; Velero treats it as false',
    ]);
  });
});

describe("rule 6: restored pods", () => {
  it("moves restore-wait first and gives it a numeric runAsUser under runAsNonRoot", () => {
    const original = fixturePod("restored-restore-wait-not-first");
    const decision = decidePod(original, "shop-restored", stateFrom(""));
    const init = decision.pod.spec!.initContainers!;
    expect(init.map((c) => c.name)).toEqual(["restore-wait", "istio-init"]);
    expect(init[0]!.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsUser: 1000 });
    expect(decision.warnings).toEqual([
      "moved restore-wait before init containers istio-init: anything before it can deadlock the restore (velero#3008)",
      "set restore-wait runAsUser=1000: runAsNonRoot needs a numeric user and Velero's image user is not (velero#9985)",
    ]);
    // The input is never modified.
    expect(original.spec!.initContainers![0]!.name).toBe("istio-init");
  });

  it("leaves the uid to the pod when it sets a numeric runAsUser, and handles the legacy restic-wait name", () => {
    const pod = fixturePod("restored-restore-wait-not-first");
    pod.spec!.securityContext = { runAsNonRoot: true, runAsUser: 999 };
    pod.spec!.initContainers![1]!.name = "restic-wait";
    const decision = decidePod(pod, "shop-restored", stateFrom(""));
    const init = decision.pod.spec!.initContainers!;
    expect(init[0]!.name).toBe("restic-wait");
    // The pod-level runAsUser applies to every container, restore-wait included.
    expect(init[0]!.securityContext).not.toHaveProperty("runAsUser");
    expect(decision.warnings.join()).not.toContain("runAsUser");
  });

  it("leaves runAsUser alone when non-root is not required or a uid is set", () => {
    const pod = fixturePod("restored-restore-wait-not-first");
    pod.spec!.securityContext = {};
    expect(decidePod(pod, "shop-restored", stateFrom("")).pod.spec!.initContainers![0]!.securityContext).not.toHaveProperty("runAsUser");
    const withUid = fixturePod("restored-restore-wait-not-first");
    withUid.spec!.initContainers![1]!.securityContext = { runAsNonRoot: true, runAsUser: 65532 };
    expect(decidePod(withUid, "shop-restored", stateFrom("")).pod.spec!.initContainers![0]!.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532 });
  });

  it("never adds restore-wait, and ignores restore-wait on pods that are not restored", () => {
    const restoredWithout = fixturePod("postgres-statefulset");
    restoredWithout.metadata!.labels!["velero.io/restore-name"] = "r1";
    expect(decidePod(restoredWithout, "shop", stateFrom("")).pod).toEqual(restoredWithout);
    const notRestored = fixturePod("restored-restore-wait-not-first");
    delete notRestored.metadata!.labels!["velero.io/restore-name"];
    expect(decidePod(notRestored, "shop", stateFrom("")).pod.spec!.initContainers!.map((c) => c.name)).toEqual(["istio-init", "restore-wait"]);
  });

  it("keeps the hook annotations that travelled inside the backup", () => {
    const decision = decidePod(fixturePod("restored-restore-wait-not-first"), "shop-restored", stateFrom(policyYaml("p", "hooks: { postRestore: { command: [other] } }", "shop-restored")));
    expect(annotationsOf(decision.pod)["post.hook.restore.velero.io/command"]).toBe('["/bin/sh","-c","pg_isready"]');
    expect(annotationsOf(decision.pod)["backup.velero.io/backup-volumes"]).toBe("data");
  });
});

describe("rule 7: skipped pods", () => {
  const state = stateFrom(policyYaml("p", "{}") + "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: {} }\n", "app-snapshots");

  it.each([
    ["mirror pod", (p: Pod) => (p.metadata!.annotations = { "kubernetes.io/config.mirror": "abc" }), "shop"],
    ["pod labelled appsnapshots.io/ignore=true", (p: Pod) => (p.metadata!.labels!["appsnapshots.io/ignore"] = "true"), "shop"],
    ["pod in app-snapshots' own namespace", () => undefined, "app-snapshots"],
  ])("skips a %s", (reason, change, namespace) => {
    const pod = fixturePod("handwritten-annotations");
    change(pod);
    const decision = decidePod(pod, namespace, state);
    expect(decision).toMatchObject({ pod, warnings: [], policy: undefined, skipped: reason });
    const data = decision.volumes.find((v) => v.name === "data")!;
    expect(data.optIn.backedUp).toBe(false);
    expect(data.optIn.reason.endsWith(`: app-snapshots leaves this pod alone (${reason})`)).toBe(true);
  });

  it("skips pods of a namespace labelled appsnapshots.io/ignore=true", () => {
    const ignored = stateFrom(policyYaml("p", "{}") + "apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { appsnapshots.io/ignore: 'true' } }\n");
    expect(decidePod(fixturePod("postgres-statefulset"), "shop", ignored).skipped).toBe("namespace labelled appsnapshots.io/ignore=true");
  });
});
