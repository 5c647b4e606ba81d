// Velero's file-system backup skips claims on hostPath PersistentVolumes (pkg/podvolume/backupper.go,
// isHostPathVolume), which is what local-path (k3s, kind), MicroK8s, minikube and Docker Desktop provision.
import { describe, expect, it } from "vitest";
import { decidePod } from "../../../src/pods/decide.js";
import { hostPathReason } from "../../../src/pods/hostPathClaims.js";
import type { Pod } from "../../../src/pods/pod.js";
import { policyYaml, stateFrom } from "./support.js";

const claim = (name: string, spec: string) => `apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: { name: ${name}, namespace: shop }\nspec: ${spec}\n---\n`;
const volume = (name: string, source: string) => `apiVersion: v1\nkind: PersistentVolume\nmetadata: { name: ${name} }\nspec: { ${source} }\n---\n`;
const storageClass = (name: string, provisioner: string, isDefault = false) =>
  `apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: { name: ${name}${isDefault ? ', annotations: { storageclass.kubernetes.io/is-default-class: "true" }' : ""} }\nprovisioner: ${provisioner}\n---\n`;

const pod: Pod = {
  metadata: { name: "db-0", namespace: "shop" },
  spec: {
    volumes: ["on-hostpath", "on-local", "unbound-local-path", "defaulted", "on-ebs"].map((name) => ({ name, persistentVolumeClaim: { claimName: name } })),
    containers: [{ name: "db", image: "postgres", volumeMounts: ["on-hostpath", "on-local", "unbound-local-path", "defaulted", "on-ebs"].map((name) => ({ name, mountPath: `/${name}` })) }],
  },
};

const state = stateFrom(
  policyYaml("all", "podSelector: {}\nvolumes: { include: ['*'] }") +
    claim("on-hostpath", "{ volumeName: pv-hostpath }") +
    volume("pv-hostpath", "hostPath: { path: /var/lib/rancher/k3s/storage/pv-hostpath }") +
    claim("on-local", "{ volumeName: pv-local }") +
    volume("pv-local", "local: { path: /mnt/disks/1 }") +
    claim("unbound-local-path", "{ storageClassName: local-path }") +
    claim("defaulted", "{}") +
    claim("on-ebs", "{ storageClassName: gp3 }") +
    storageClass("local-path", "rancher.io/local-path", true) +
    storageClass("gp3", "ebs.csi.aws.com"),
);

describe("claims Velero's file-system backup skips", () => {
  it("are those bound to a hostPath PersistentVolume, or unbound in a class whose provisioner makes them", () => {
    expect(hostPathReason({ volume: { name: "pv-1", hostPath: true } })).toBe("its PersistentVolume pv-1 is hostPath");
    expect(hostPathReason({ volume: { name: "pv-1", hostPath: false }, storageClass: { name: "local-path", provisioner: "rancher.io/local-path" } })).toBeUndefined();
    expect(hostPathReason({ storageClass: { name: "microk8s-hostpath", provisioner: "microk8s.io/hostpath" } })).toBe("its StorageClass microk8s-hostpath (microk8s.io/hostpath) provisions hostPath volumes");
    expect(hostPathReason({ storageClass: { name: "gp3", provisioner: "ebs.csi.aws.com" } })).toBeUndefined();
    expect(hostPathReason({})).toBeUndefined();
  });

  it("are warned about when a policy selects them, and shown as not backed up in the volume verdicts", () => {
    const decision = decidePod(pod, "shop", state);
    expect(decision.pod.metadata?.annotations?.["backup.velero.io/backup-volumes"]).toBe("on-hostpath,on-local,unbound-local-path,defaulted,on-ebs");
    expect(decision.warnings.filter((w) => w.includes("skips hostPath volumes"))).toEqual([
      `volume "on-hostpath" is selected for backup, but its PersistentVolume pv-hostpath is hostPath (claim on-hostpath): Velero's file-system backup skips hostPath volumes, so its data will not be in the backup`,
      `volume "unbound-local-path" is selected for backup, but its StorageClass local-path (rancher.io/local-path) provisions hostPath volumes (claim unbound-local-path): Velero's file-system backup skips hostPath volumes, so its data will not be in the backup`,
      `volume "defaulted" is selected for backup, but its StorageClass local-path (rancher.io/local-path) provisions hostPath volumes (claim defaulted): Velero's file-system backup skips hostPath volumes, so its data will not be in the backup`,
    ]);
    expect(Object.fromEntries(decision.volumes.map((v) => [v.name, v.optIn.backedUp]))).toEqual({ "on-hostpath": false, "on-local": true, "unbound-local-path": false, defaulted: false, "on-ebs": true });
    expect(decision.volumes.find((v) => v.name === "on-hostpath")!.optIn.reason).toBe("Velero's file-system backup skips it: its PersistentVolume pv-hostpath is hostPath");
  });
});
