import { describe, expect, it } from "vitest";
import { decidePod } from "../../../src/pods/decide.js";
import type { Pod } from "../../../src/pods/pod.js";
import { fixturePod, policyYaml, stateFrom } from "./support.js";

const annotationsOf = (pod: Pod) => pod.metadata?.annotations ?? {};
const hooks = "hooks: { preBackup: { command: [sync] }, postBackup: { command: [unfreeze] }, postRestore: { command: [check] } }";

describe("the application container, not an injected proxy", () => {
  it("runs hooks naming no container in the application container when a sidecar comes first, and says so", () => {
    const decision = decidePod(fixturePod("istio-proxy-first"), "shop", stateFrom(policyYaml("p", hooks)));
    expect(annotationsOf(decision.pod)["pre.hook.backup.velero.io/container"]).toBe("redis");
    expect(annotationsOf(decision.pod)["post.hook.backup.velero.io/container"]).toBe("redis");
    expect(annotationsOf(decision.pod)["post.hook.restore.velero.io/container"]).toBe("redis");
    expect(decision.warnings).toEqual(['hooks of policy shop/p run in container "redis" (not the first container: istio-proxy is an injected sidecar)']);
  });

  it("follows kubectl's default-container annotation", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.metadata!.annotations = { "kubectl.kubernetes.io/default-container": "exporter" };
    const decision = decidePod(pod, "shop", stateFrom(policyYaml("p", hooks)));
    expect(annotationsOf(decision.pod)["pre.hook.backup.velero.io/container"]).toBe("exporter");
    expect(decision.warnings).toEqual([`hooks of policy shop/p run in container "exporter" (named by kubectl.kubernetes.io/default-container)`]);
  });

  it("never picks a native sidecar (an init container with restartPolicy Always)", () => {
    const pod = fixturePod("postgres-statefulset");
    pod.spec!.initContainers = [{ name: "vault-agent", image: "hashicorp/vault:1.18", restartPolicy: "Always" }];
    expect(annotationsOf(decidePod(pod, "shop", stateFrom(policyYaml("p", hooks))).pod)["pre.hook.backup.velero.io/container"]).toBe("postgres");
  });
});

describe("reinvocation: the webhook sees its own output again", () => {
  const state = stateFrom(policyYaml("p", hooks));

  it("changes nothing and warns about nothing, even about a user list it completed", () => {
    const pod = fixturePod("handwritten-annotations");
    const first = decidePod(pod, "shop", state);
    expect(first.warnings.length).toBeGreaterThan(0);
    const again = decidePod(first.pod, "shop", state);
    expect(again.pod).toBe(first.pod);
    expect(again.warnings).toEqual([]);
  });

  it("recomputes its own lists for volumes another webhook added after it, and still warns about nothing", () => {
    const first = decidePod(fixturePod("postgres-statefulset"), "shop", state).pod;
    expect(annotationsOf(first)["backup.velero.io/backup-volumes"]).toBe("data,scratch");
    // A mesh injector runs after us and adds a proxy with a memory-backed volume.
    const injected = structuredClone(first);
    injected.spec!.containers!.unshift({ name: "linkerd-proxy", image: "cr.l5d.io/linkerd/proxy:edge", volumeMounts: [{ name: "linkerd-identity-end-entity", mountPath: "/var/run/linkerd/identity/end-entity" }] });
    injected.spec!.volumes!.push({ name: "linkerd-identity-end-entity", emptyDir: { medium: "Memory" } });
    const again = decidePod(injected, "shop", state);
    expect(annotationsOf(again.pod)["backup.velero.io/backup-volumes"]).toBe("data,scratch");
    expect(annotationsOf(again.pod)["backup.velero.io/backup-volumes-excludes"]).toBe("linkerd-identity-end-entity");
    expect(annotationsOf(again.pod)["pre.hook.backup.velero.io/container"]).toBe("postgres");
    expect(again.warnings).toEqual([]);
  });

  it("treats its own hooks as its own: a changed policy replaces both halves of the pair", () => {
    const first = decidePod(fixturePod("postgres-statefulset"), "shop", state).pod;
    const changed = stateFrom(policyYaml("p", "hooks: { preBackup: { command: [fsfreeze] } }"));
    const again = decidePod(first, "shop", changed);
    expect(annotationsOf(again.pod)["pre.hook.backup.velero.io/command"]).toBe('["fsfreeze"]');
    expect(Object.keys(annotationsOf(again.pod)).filter((k) => k.startsWith("post.hook."))).toEqual([]);
    expect(annotationsOf(again.pod)["appsnapshots.io/managed"]).toBe("backup-volumes,pre-backup");
  });
});
