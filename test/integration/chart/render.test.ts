import { readFileSync } from "node:fs";
import path from "node:path";
import {
  KubeConfig,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1Container,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
  type V1NetworkPolicy,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1PodDisruptionBudget,
  type V1PolicyRule,
  type V1Role,
  type V1RoleBinding,
  type V1Secret,
  type V1Service,
  type V1ServiceAccount,
  type V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { parse } from "yaml";
import { applyObjects, parseManifests } from "../../../src/kube/apply.js";
import { KubeRequestError, kubeRequest } from "../../../src/kube/request.js";
import { parseCredentials } from "../../../src/s3/credentials.js";
import { certManagerCrdFiles } from "../../chart/certManagerCrds.js";
import { locationCommandIn, runNotesCommand } from "../../chart/notes.js";
import { chartDir, ciValuesFiles, findObject, getObject, helm, helmLint, helmTemplate, objectsOfKind, renderChart, valuesArgs, type RenderOptions } from "../../chart/helm.js";
import { installCrdFiles } from "../../cluster/crds.js";

/** The arguments every storage Deployment starts with (the CLI contract); the rest depends on values. */
const STORAGE_BASE_ARGS = ["storage", "--root=/data", "--s3-listen=:9000", "--credentials=/etc/app-snapshots/credentials/cloud", "--health-listen=:8080"];
const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;

// --- scenarios: every ci/*.yaml file plus a few --set variations -----------------------------------

interface Scenario extends RenderOptions {
  name: string;
  releaseName: string;
  namespace: string;
}

interface Certificate extends KubernetesObject {
  spec: Record<string, unknown>;
}

const DIGEST = `sha256:${"ab".repeat(32)}`;
const scenarioList: Array<{ name: string; valuesFiles: string[]; set?: Record<string, string> }> = [
  { name: "defaults", valuesFiles: ["ci/hostpath-values.yaml"] },
  { name: "nfs", valuesFiles: ["ci/nfs-values.yaml"] },
  { name: "existing-claim", valuesFiles: ["ci/existing-claim-values.yaml"] },
  { name: "cert-manager", valuesFiles: ["ci/cert-manager-values.yaml"] },
  { name: "cert-manager-issuer", valuesFiles: ["ci/cert-manager-values.yaml"], set: { "certManager.issuerRef.name": "corporate-ca", "certManager.issuerRef.kind": "ClusterIssuer" } },
  { name: "existing-secret", valuesFiles: ["ci/existing-secret-values.yaml"] },
  { name: "components-disabled", valuesFiles: ["ci/components-disabled-values.yaml"] },
  // Without the webhook there is no CA for the storage: plain HTTP must be chosen explicitly.
  { name: "webhook-disabled", valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.enabled": "false", "storage.tls.enabled": "false" } },
  { name: "network-policy", valuesFiles: ["ci/network-policy-values.yaml"] },
  { name: "url-mode", valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.url": "https://127.0.0.1:9443" } },
  { name: "storage-plain-http", valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.tls.enabled": "false", "networkPolicy.enabled": "false" } },
  {
    name: "client-auth",
    valuesFiles: ["ci/hostpath-values.yaml"],
    set: {
      "webhook.clientAuth.enabled": "true",
      "webhook.clientAuth.existingConfigMap": "apiserver-client-ca",
      "webhook.clientAuth.allowedNames[0]": "kube-apiserver-webhook-client",
      "storage.tls.extraIpAddresses[0]": "10.96.0.50",
      "storage.tls.extraDnsNames[0]": "backups.example.com",
      "storage.tls.certLifetime": "24h",
      "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name": "monitoring",
    },
  },
  {
    name: "overrides",
    valuesFiles: ["ci/hostpath-values.yaml"],
    set: {
      fullnameOverride: `fo-${run}`,
      "commonLabels.team": "backup",
      "commonAnnotations.owner": "ops",
      "podLabels.tier": "infra",
      "podAnnotations.note": "hello",
      "image.tag": "1.2.3",
      "image.digest": DIGEST,
      "imagePullSecrets[0]": "regcred",
      priorityClassName: `pc-${run}`,
      logLevel: "debug",
      "podSecurityContext.runAsUser": "1001",
    },
  },
];
const scenarios: Scenario[] = scenarioList.map((s, index) => ({ ...s, releaseName: `s${index}-${run}`, namespace: `chart-${s.name}-${run}`.slice(0, 63) }));
// Velero in the release namespace: the credentials are not copied onto themselves and no two Roles collide.
scenarios.push({
  name: "velero-here",
  valuesFiles: ["ci/network-policy-values.yaml"],
  set: { "velero.namespace": `chart-velero-here-${run}` },
  releaseName: `s${scenarios.length}-${run}`,
  namespace: `chart-velero-here-${run}`,
});
const scenario = (name: string): Scenario => scenarios.find((s) => s.name === name)!;
const rendered = new Map<string, KubernetesObject[]>();
const objectsOf = (name: string) => rendered.get(name)!;

const fullname = (s: Scenario) => s.set?.fullnameOverride ?? `${s.releaseName}-app-snapshots`;
const CLUSTER_SCOPED = new Set(["ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "PersistentVolume"]);

beforeAll(async () => {
  // Renders run concurrently; helm() itself keeps at most three processes going.
  const results = await Promise.all(scenarios.map(async (s) => [s.name, await renderChart(s)] as const));
  for (const [name, objects] of results) rendered.set(name, objects);
});

function only<T>(items: T[] | undefined, what: string): T {
  expect(items, what).toHaveLength(1);
  return items![0]!;
}
const containerOf = (deployment: V1Deployment): V1Container => only(deployment.spec?.template.spec?.containers, `${deployment.metadata?.name} containers`);
const argsOf = (deployment: V1Deployment) => containerOf(deployment).args ?? [];
const componentOf = (o: KubernetesObject) => o.metadata?.labels?.["app.kubernetes.io/component"];
const decodeCloud = (secret: V1Secret) => Buffer.from(secret.data?.cloud ?? "", "base64").toString();

// --- helm lint ----------------------------------------------------------------------------------------

describe("helm lint --strict", () => {
  it("covers every ci/*.yaml file in the scenarios below", () => {
    expect(new Set(scenarios.flatMap((s) => s.valuesFiles ?? []))).toEqual(new Set(ciValuesFiles()));
  });

  it.each([["the defaults", []], ...ciValuesFiles().map((file) => [file, [file]] as [string, string[]])] as Array<[string, string[]]>)("passes with %s", async (_label, valuesFiles) => {
    const result = await helmLint({ valuesFiles });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });
});

// --- values the chart refuses ---------------------------------------------------------------------

describe("values the schema and the template guards refuse, with a message naming the value", () => {
  const cases: Array<[string, RenderOptions, RegExp]> = [
    ["no storage volume (the defaults)", {}, /storage\.volume: choose where backups are stored: set exactly one of storage\.volume\.hostPath \{path, node\}, storage\.volume\.nfs \{server, path\} or storage\.volume\.existingClaim/],
    ["an unknown top-level key", { valuesFiles: ["ci/hostpath-values.yaml"], set: { replicas: "2" } }, /at '': additional properties 'replicas' not allowed/],
    ["an unknown key in webhook", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.bogus": "1" } }, /at '\/webhook': additional properties 'bogus' not allowed/],
    ["an unknown key in storage.s3", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.s3.endpoint": "x" } }, /at '\/storage\/s3': additional properties 'endpoint' not allowed/],
    ["failurePolicy: Maybe", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.pods.failurePolicy": "Maybe" } }, /at '\/webhook\/pods\/failurePolicy': value must be one of 'Ignore', 'Fail'/],
    ["reinvocationPolicy: Always", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.pods.reinvocationPolicy": "Always" } }, /at '\/webhook\/pods\/reinvocationPolicy': value must be one of 'Never', 'IfNeeded'/],
    ["timeoutSeconds: 31", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.velero.timeoutSeconds": "31" } }, /at '\/webhook\/velero\/timeoutSeconds': maximum: got 31, want 30/],
    ["webhook.replicas: 0", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.replicas": "0" } }, /at '\/webhook\/replicas': minimum: got 0, want 1/],
    ["storage.replicas: 0", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.replicas": "0" } }, /at '\/storage\/replicas': minimum: got 0, want 1/],
    ["a duration that is not a Go duration", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "certs.caLifetime": "1y" } }, /at '\/certs\/caLifetime': '1y' does not match pattern/],
    [
      "certificate lifetimes the webhook would refuse (its 10 s publish delay)",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "certs.caLifetime": "60s", "certs.certLifetime": "15s" } },
      /certs\.caLifetime=60s and certs\.certLifetime=15s: the webhook would refuse to start\. With its 10s CA publish delay, certLifetime must be at least 30s, and caLifetime at least 90s and at least certLifetime/,
    ],
    ["a CA shorter than its serving certificates", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "certs.caLifetime": "1h", "certs.certLifetime": "1h30m" } }, /certs\.caLifetime=1h and certs\.certLifetime=1h30m: the webhook would refuse to start/],
    ["webhook.url over http", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.url": "http://127.0.0.1:9443" } }, /at '\/webhook\/url': 'http:\/\/127\.0\.0\.1:9443' does not match pattern/],
    ["hostPath without its node", { set: { "storage.volume.hostPath.path": "/srv" } }, /at '\/storage\/volume\/hostPath': properties 'node' required, if 'path' exists/],
    [
      "two storage volumes",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.volume.existingClaim": "backups" } },
      /storage\.volume: set exactly one of storage\.volume\.hostPath, storage\.volume\.nfs, storage\.volume\.existingClaim; found storage\.volume\.hostPath and storage\.volume\.existingClaim/,
    ],
    ["hostPath with two replicas", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.replicas": "2" } }, /storage\.volume\.hostPath is a folder on one node, so storage\.replicas must be 1 \(got 2\)/],
    ["certs.existingSecret without certs.caBundle", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "certs.existingSecret": "my-tls" } }, /certs\.existingSecret=my-tls needs certs\.caBundle: the PEM of the CA that signed its tls\.crt/],
    ["cert-manager and an existing Secret at once", { valuesFiles: ["ci/existing-secret-values.yaml"], set: { "certManager.enabled": "true" } }, /certManager\.enabled and certs\.existingSecret are two different certificate sources/],
    [
      "storage TLS without a certificate source (the webhook's certificate is the admin's)",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "certs.existingSecret": "mine", "certs.caBundle": "-----BEGIN CERTIFICATE-----x" } },
      /storage\.tls\.enabled needs a certificate source: the webhook's self-managed CA \(webhook\.enabled without certs\.existingSecret\), certManager\.enabled, or storage\.tls\.existingSecret; set storage\.tls\.enabled=false only to serve S3 over plain HTTP/,
    ],
    [
      "storage TLS off with a storage certificate Secret",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.tls.enabled": "false", "storage.tls.existingSecret": "mine" } },
      /storage\.tls\.enabled is false but storage\.tls\.existingSecret or storage\.tls\.caBundle is set/,
    ],
    ["storage.tls.caBundle without its Secret", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.tls.caBundle": "-----BEGIN CERTIFICATE-----x" } }, /storage\.tls\.caBundle is only used with storage\.tls\.existingSecret/],
    [
      "a storage certificate shorter than three publish delays",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.tls.certLifetime": "20s" } },
      /storage\.tls\.certLifetime=20s and certs\.caLifetime=8760h: the webhook would refuse to start\. The storage certificate comes from the webhook's CA: it must be at least 30s/,
    ],
    ["a storage certificate outliving the CA", { valuesFiles: ["ci/hostpath-values.yaml"], set: { "storage.tls.certLifetime": "8761h" } }, /storage\.tls\.certLifetime=8761h and certs\.caLifetime=8760h/],
    [
      "client authentication without a CA",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.clientAuth.enabled": "true", "webhook.clientAuth.allowedNames[0]": "kube-apiserver" } },
      /webhook\.clientAuth\.enabled needs the CA that signs the apiserver's client certificate: set webhook\.clientAuth\.caBundle \(PEM\) or webhook\.clientAuth\.existingConfigMap/,
    ],
    [
      "client authentication without names",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.clientAuth.enabled": "true", "webhook.clientAuth.existingConfigMap": "ca" } },
      /webhook\.clientAuth\.enabled needs webhook\.clientAuth\.allowedNames/,
    ],
    [
      "client authentication settings while it is off",
      { valuesFiles: ["ci/hostpath-values.yaml"], set: { "webhook.clientAuth.allowedNames[0]": "kube-apiserver" } },
      /webhook\.clientAuth\.caBundle, existingConfigMap and allowedNames take effect only with webhook\.clientAuth\.enabled=true/,
    ],
    [
      "the webhook on with both webhook configurations off",
      { valuesFiles: ["ci/components-disabled-values.yaml"], set: { "webhook.pods.enabled": "false" } },
      /webhook\.enabled is true but both webhook\.pods\.enabled and webhook\.velero\.enabled are false/,
    ],
  ];

  it.each(cases)("%s", async (_label, options, message) => {
    const result = await helmTemplate(options);
    expect(result.code, result.stdout.slice(0, 300)).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});

// --- what every scenario renders --------------------------------------------------------------------

describe.each(scenarios)("rendered objects: $name", (s) => {
  it("carries the standard and common labels and annotations, and namespaces every namespaced object", () => {
    const objects = objectsOf(s.name);
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) {
      const where = `${o.kind} ${o.metadata?.name}`;
      expect(o.metadata?.labels, where).toMatchObject({
        "app.kubernetes.io/name": "app-snapshots",
        "app.kubernetes.io/instance": s.releaseName,
        "app.kubernetes.io/version": "0.1.0",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": "app-snapshots-0.1.0",
        ...(s.set?.["commonLabels.team"] ? { team: "backup" } : {}),
      });
      if (s.set?.["commonAnnotations.owner"]) expect(o.metadata?.annotations, where).toMatchObject({ owner: "ops" });
      if (CLUSTER_SCOPED.has(o.kind!)) expect(o.metadata?.namespace, where).toBeUndefined();
      else expect([s.namespace, "velero"], where).toContain(o.metadata?.namespace);
    }
  });

  it("renders no object twice (kind, namespace and name are unique)", () => {
    const keys = objectsOf(s.name).map((o) => `${o.kind} ${o.metadata?.namespace ?? ""}/${o.metadata?.name}`);
    expect(keys.filter((key, index) => keys.indexOf(key) !== index)).toEqual([]);
  });

  it("grants no wildcard and nothing that escalates", () => {
    const rules: V1PolicyRule[] = [...objectsOfKind<V1ClusterRole>(objectsOf(s.name), "ClusterRole"), ...objectsOfKind<V1Role>(objectsOf(s.name), "Role")].flatMap((r) => r.rules ?? []);
    for (const rule of rules) {
      for (const value of [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? [])]) expect(value).not.toContain("*");
      expect(rule.nonResourceURLs).toBeUndefined();
      for (const verb of rule.verbs) expect(["get", "list", "watch", "create", "update", "patch"]).toContain(verb);
    }
  });

  it("meets Pod Security restricted on every pod template, with probes on the plain-HTTP health port", () => {
    for (const deployment of objectsOfKind<V1Deployment>(objectsOf(s.name), "Deployment")) {
      const pod = deployment.spec!.template.spec!;
      const where = deployment.metadata!.name!;
      const uid = Number(s.set?.["podSecurityContext.runAsUser"] ?? 65532);
      expect(pod.securityContext, where).toEqual({ runAsNonRoot: true, runAsUser: uid, runAsGroup: 65532, fsGroup: 65532, fsGroupChangePolicy: "OnRootMismatch", seccompProfile: { type: "RuntimeDefault" } });
      expect(pod.enableServiceLinks, where).toBe(false);
      expect(pod.terminationGracePeriodSeconds, where).toBeGreaterThanOrEqual(30);
      expect(pod.volumes?.filter((v) => v.hostPath || v.nfs), where).toEqual([]);
      const container = containerOf(deployment);
      expect(container.securityContext, where).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      const tmp = container.volumeMounts?.find((m) => m.mountPath === "/tmp");
      expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, where).toBeDefined();
      expect(Object.keys(container.resources?.requests ?? {}), where).toEqual(expect.arrayContaining(["cpu", "memory"]));
      expect(Object.keys(container.resources?.limits ?? {}), where).toContain("memory");
      expect(container.ports?.find((p) => p.name === "health"), where).toEqual({ name: "health", containerPort: 8080, protocol: "TCP" });
      expect(container.startupProbe?.httpGet, where).toEqual({ path: "/readyz", port: "health" });
      expect(container.startupProbe!.failureThreshold! * container.startupProbe!.periodSeconds!, where).toBeGreaterThanOrEqual(120);
      expect(container.readinessProbe?.httpGet, where).toEqual({ path: "/readyz", port: "health" });
      expect(container.livenessProbe?.httpGet, where).toEqual({ path: "/healthz", port: "health" });
      expect(container.env?.find((e) => e.name === "LOG_LEVEL")?.value, where).toBe(s.set?.logLevel ?? "info");
      // The selector picks this template and nothing else of ours.
      expect(deployment.spec!.template.metadata!.labels, where).toMatchObject(deployment.spec!.selector.matchLabels!);
      expect(deployment.spec!.selector.matchLabels!["app.kubernetes.io/component"], where).toBe(componentOf(deployment));
    }
  });

  it("points each Service at a Deployment's pods and at container ports that exist", () => {
    const deployments = objectsOfKind<V1Deployment>(objectsOf(s.name), "Deployment");
    for (const service of objectsOfKind<V1Service>(objectsOf(s.name), "Service")) {
      const target = deployments.find((d) => Object.entries(service.spec!.selector!).every(([k, v]) => d.spec!.template.metadata!.labels![k] === v));
      expect(target, service.metadata!.name).toBeDefined();
      const names = containerOf(target!).ports!.map((p) => p.name);
      for (const port of service.spec!.ports!) expect(names).toContain(port.targetPort);
    }
  });

  it("mounts only claims, Secrets and emptyDirs that the release provides or the values name", () => {
    const objects = objectsOf(s.name);
    for (const deployment of objectsOfKind<V1Deployment>(objects, "Deployment")) {
      for (const volume of deployment.spec!.template.spec!.volumes ?? []) {
        const claim = volume.persistentVolumeClaim?.claimName;
        if (claim && claim !== "velero-backups") getObject(objects, "PersistentVolumeClaim", claim, s.namespace);
        const secret = volume.secret?.secretName;
        // The webhook's TLS Secret comes from cert-manager or the admin; the storage credentials from the chart.
        if (secret?.endsWith("-storage-credentials")) getObject(objects, "Secret", secret, s.namespace);
      }
    }
  });
});

// --- the defaults, field by field -------------------------------------------------------------------

describe("defaults (with a hostPath volume)", () => {
  const s = scenario("defaults");
  const name = () => fullname(s);

  it("renders the pod MutatingWebhookConfiguration exactly", () => {
    const config = getObject<V1MutatingWebhookConfiguration>(objectsOf(s.name), "MutatingWebhookConfiguration", `${name()}-pods`);
    expect(config.metadata?.annotations).toBeUndefined();
    expect(config.webhooks).toEqual([
      {
        name: "pods.appsnapshots.io",
        clientConfig: { service: { name: `${name()}-webhook`, namespace: s.namespace, path: "/mutate/pods", port: 443 } },
        rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }],
        failurePolicy: "Ignore",
        reinvocationPolicy: "IfNeeded",
        sideEffects: "NoneOnDryRun",
        timeoutSeconds: 5,
        matchPolicy: "Equivalent",
        admissionReviewVersions: ["v1"],
        namespaceSelector: {
          matchExpressions: [
            { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "kube-public", "kube-node-lease", s.namespace] },
            { key: "appsnapshots.io/ignore", operator: "NotIn", values: ["true"] },
          ],
        },
        matchConditions: [{ name: "not-a-mirror-pod", expression: "!has(object.metadata.annotations) || !('kubernetes.io/config.mirror' in object.metadata.annotations)" }],
      },
    ]);
  });

  it("renders the Velero ValidatingWebhookConfiguration exactly (the rules of the harness's url-mode webhook)", () => {
    const config = getObject<V1ValidatingWebhookConfiguration>(objectsOf(s.name), "ValidatingWebhookConfiguration", `${name()}-velero`);
    expect(config.webhooks).toEqual([
      {
        name: "velero.appsnapshots.io",
        clientConfig: { service: { name: `${name()}-webhook`, namespace: s.namespace, path: "/validate/velero", port: 443 } },
        rules: [
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE", "DELETE"], resources: ["backupstoragelocations"], scope: "Namespaced" },
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["backups", "schedules"], scope: "Namespaced" },
          { apiGroups: ["velero.io"], apiVersions: ["v1"], operations: ["CREATE"], resources: ["restores"], scope: "Namespaced" },
        ],
        failurePolicy: "Fail",
        sideEffects: "None",
        timeoutSeconds: 10,
        matchPolicy: "Equivalent",
        admissionReviewVersions: ["v1"],
        matchConditions: [
          { name: "not-velero-service-account", expression: "!(request.userInfo.username in ['system:serviceaccount:velero:velero', 'system:serviceaccount:velero:velero-server'])" },
          { name: "spec-changed", expression: "request.operation != 'UPDATE' || has(object.spec) != has(oldObject.spec) || (has(object.spec) && object.spec != oldObject.spec)" },
          {
            name: "not-created-with-phase",
            expression:
              "!(request.operation == 'CREATE' && request.resource.resource in ['backups', 'restores'] && has(object.status) && has(object.status.phase) && !(object.status.phase in ['', 'New', 'Queued', 'ReadyToStart']))",
          },
        ],
      },
    ]);
  });

  it("runs the webhook with self-managed certificates: the CLI contract's arguments, two spread replicas, a PDB", () => {
    const objects = objectsOf(s.name);
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name()}-webhook`, s.namespace);
    const svc = `${name()}-webhook`;
    expect(argsOf(deployment)).toEqual([
      "webhook",
      "--host=",
      "--port=8443",
      "--health-port=8080",
      `--tls-secret=${name()}-webhook-tls`,
      `--cert-dns=${svc}`,
      `--cert-dns=${svc}.${s.namespace}`,
      `--cert-dns=${svc}.${s.namespace}.svc`,
      `--lease=${name()}-webhook-leader`,
      `--mutating-webhook-configuration=${name()}-pods`,
      `--validating-webhook-configuration=${name()}-velero`,
      "--ca-lifetime=8760h",
      "--cert-lifetime=168h",
      // The storage's certificate from the same CA, and the caCert of the location NOTES prints.
      `--storage-tls-secret=${name()}-storage-tls`,
      `--storage-cert-dns=${name()}-storage`,
      `--storage-cert-dns=${name()}-storage.${s.namespace}`,
      `--storage-cert-dns=${name()}-storage.${s.namespace}.svc`,
      "--storage-cert-lifetime=168h",
      `--storage-backup-location=velero/${name()}`,
      "--velero-service-account=system:serviceaccount:velero:velero",
      "--velero-service-account=system:serviceaccount:velero:velero-server",
    ]);
    const container = containerOf(deployment);
    expect(container.image).toBe("ghcr.io/app-snapshots/app-snapshots:0.1.0");
    expect(container.env).toEqual([
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "LOG_LEVEL", value: "info" },
    ]);
    expect(container.ports).toContainEqual({ name: "https", containerPort: 8443, protocol: "TCP" });
    // Self-managed: the process reads its Secret through the API; nothing is mounted but /tmp.
    expect(container.volumeMounts).toEqual([{ name: "tmp", mountPath: "/tmp" }]);
    const spec = deployment.spec!;
    expect(spec.replicas).toBe(2);
    expect(spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(spec.template.spec!.automountServiceAccountToken).toBe(true);
    expect(spec.template.spec!.serviceAccountName).toBe(svc);
    expect(spec.template.spec!.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: spec.selector.matchLabels } },
    ]);
    const pdb = getObject<V1PodDisruptionBudget>(objects, "PodDisruptionBudget", svc, s.namespace);
    expect(pdb.spec).toEqual({ maxUnavailable: 1, unhealthyPodEvictionPolicy: "AlwaysAllow", selector: { matchLabels: spec.selector.matchLabels } });
    const service = getObject<V1Service>(objects, "Service", svc, s.namespace);
    expect(service.spec!.ports).toEqual([{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }]);
    expect(getObject<V1ServiceAccount>(objects, "ServiceAccount", svc, s.namespace).automountServiceAccountToken).toBe(true);
  });

  it("grants the webhook exactly what it reads, and patch only on its own two configurations", () => {
    const objects = objectsOf(s.name);
    const clusterRole = getObject<V1ClusterRole>(objects, "ClusterRole", `${name()}-webhook`);
    expect(clusterRole.rules).toEqual([
      { apiGroups: ["appsnapshots.io"], resources: ["snapshotpolicies", "clustersnapshotpolicies"], verbs: ["list", "watch"] },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["list", "watch"] },
      { apiGroups: [""], resources: ["nodes"], verbs: ["list"] },
      { apiGroups: ["velero.io"], resources: ["backupstoragelocations", "backups", "schedules", "volumesnapshotlocations"], verbs: ["list", "watch"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims", "persistentvolumes"], verbs: ["get"] },
      { apiGroups: ["storage.k8s.io"], resources: ["storageclasses"], verbs: ["get", "list"] },
      { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
      { apiGroups: ["admissionregistration.k8s.io"], resources: ["mutatingwebhookconfigurations"], resourceNames: [`${name()}-pods`], verbs: ["list", "watch", "patch"] },
      { apiGroups: ["admissionregistration.k8s.io"], resources: ["validatingwebhookconfigurations"], resourceNames: [`${name()}-velero`], verbs: ["list", "watch", "patch"] },
    ]);
    const subject = { kind: "ServiceAccount", name: `${name()}-webhook`, namespace: s.namespace };
    const clusterBinding = getObject<V1ClusterRoleBinding>(objects, "ClusterRoleBinding", `${name()}-webhook`);
    expect(clusterBinding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${name()}-webhook` });
    expect(clusterBinding.subjects).toEqual([subject]);

    const veleroRole = getObject<V1Role>(objects, "Role", `${name()}-webhook-velero`, "velero");
    // Secrets only with webhook.velero.checkSecretKeys (off by default).
    // The location's caCert: get and patch on that one BackupStorageLocation.
    expect(veleroRole.rules).toEqual([
      { apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["velero"], verbs: ["get"] },
      { apiGroups: ["velero.io"], resources: ["backupstoragelocations"], resourceNames: [name()], verbs: ["get", "patch"] },
    ]);
    const ownRole = getObject<V1Role>(objects, "Role", `${name()}-webhook`, s.namespace);
    expect(ownRole.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], resourceNames: [`${name()}-webhook-tls`], verbs: ["list", "watch", "update"] },
      { apiGroups: [""], resources: ["secrets"], resourceNames: [`${name()}-storage-tls`], verbs: ["get", "update"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [`${name()}-webhook-leader`], verbs: ["get", "update"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    ]);
    for (const [binding, namespace] of [
      [`${name()}-webhook-velero`, "velero"],
      [`${name()}-webhook`, s.namespace],
    ] as const) {
      const roleBinding = getObject<V1RoleBinding>(objects, "RoleBinding", binding, namespace);
      expect(roleBinding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: binding });
      expect(roleBinding.subjects).toEqual([subject]);
    }
    // Without lvp the storage pod has no API access at all.
    expect(findObject(objects, "Role", `${name()}-storage-lvp`, "velero")).toBeUndefined();
  });

  it("runs one storage replica with Recreate, the CLI contract's arguments and no API token", () => {
    const objects = objectsOf(s.name);
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name()}-storage`, s.namespace);
    expect(argsOf(deployment)).toEqual([
      ...STORAGE_BASE_ARGS,
      "--region=us-east-1",
      "--bucket=velero",
      "--no-bucket-changes",
      "--tls-cert=/etc/app-snapshots/tls/tls.crt",
      "--tls-key=/etc/app-snapshots/tls/tls.key",
    ]);
    expect(deployment.spec!.replicas).toBe(1);
    expect(deployment.spec!.strategy).toEqual({ type: "Recreate" });
    const pod = deployment.spec!.template.spec!;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(getObject<V1ServiceAccount>(objects, "ServiceAccount", `${name()}-storage`, s.namespace).automountServiceAccountToken).toBe(false);
    expect(pod.nodeSelector).toEqual({ "kubernetes.io/hostname": "node-1" });
    const container = containerOf(deployment);
    expect(container.env).toEqual([
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      { name: "LOG_LEVEL", value: "info" },
    ]);
    expect(container.ports).toEqual([
      { name: "s3", containerPort: 9000, protocol: "TCP" },
      { name: "health", containerPort: 8080, protocol: "TCP" },
    ]);
    expect(container.volumeMounts).toEqual([
      { name: "data", mountPath: "/data" },
      { name: "credentials", mountPath: "/etc/app-snapshots/credentials", readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
      { name: "tls", mountPath: "/etc/app-snapshots/tls", readOnly: true },
    ]);
    // The Secret the webhook's elected replica makes (the pod starts once it exists).
    expect(pod.volumes?.find((v) => v.name === "tls")).toEqual({ name: "tls", secret: { secretName: `${name()}-storage-tls`, defaultMode: 288 } });
    expect(pod.volumes?.find((v) => v.name === "data")).toEqual({ name: "data", persistentVolumeClaim: { claimName: `${name()}-storage` } });
    expect(pod.volumes?.find((v) => v.name === "credentials")?.secret?.secretName).toBe(`${name()}-storage-credentials`);
    expect(getObject<V1Service>(objects, "Service", `${name()}-storage`, s.namespace).spec!.ports).toEqual([{ name: "s3", port: 9000, targetPort: "s3", protocol: "TCP" }]);
    // One replica: a budget would protect nothing.
    expect(findObject(objects, "PodDisruptionBudget", `${name()}-storage`, s.namespace)).toBeUndefined();
  });

  it("reaches the hostPath folder through a pre-bound PersistentVolume and claim (no inline hostPath)", () => {
    const objects = objectsOf(s.name);
    const pvName = `${s.namespace}-${name()}-storage`;
    const pv = getObject<V1PersistentVolume>(objects, "PersistentVolume", pvName);
    expect(pv.spec).toEqual({
      capacity: { storage: "100Gi" },
      accessModes: ["ReadWriteOnce"],
      volumeMode: "Filesystem",
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "",
      claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: s.namespace, name: `${name()}-storage` },
      hostPath: { path: "/var/lib/app-snapshots", type: "DirectoryOrCreate" },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node-1"] }] }] } },
    });
    const pvc = getObject<V1PersistentVolumeClaim>(objects, "PersistentVolumeClaim", `${name()}-storage`, s.namespace);
    expect(pvc.spec).toEqual({ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem", storageClassName: "", volumeName: pvName, resources: { requests: { storage: "100Gi" } } });
  });

  it("generates S3 credentials as a shared-credentials file the storage parser reads, and copies them to Velero's namespace", () => {
    const objects = objectsOf(s.name);
    const secret = getObject<V1Secret>(objects, "Secret", `${name()}-storage-credentials`, s.namespace);
    const copy = getObject<V1Secret>(objects, "Secret", `${name()}-storage-credentials`, "velero");
    expect(Object.keys(secret.data ?? {})).toEqual(["cloud"]);
    expect(copy.data).toEqual(secret.data);
    const text = decodeCloud(secret);
    expect(text).toMatch(/^\[default\]\naws_access_key_id=[A-Z0-9]{20}\naws_secret_access_key=[A-Za-z0-9]{40}\n$/);
    const pairs = [...parseCredentials(text)];
    expect(pairs).toHaveLength(1);
    expect(pairs[0]![0]).toHaveLength(20);
    expect(pairs[0]![1]).toHaveLength(40);
  });

  it("renders no caBundle when the TLS Secret cannot be looked up (first install, helm template)", () => {
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      for (const config of objectsOfKind<V1MutatingWebhookConfiguration>(objectsOf(s.name), kind)) expect(config.webhooks![0]!.clientConfig.caBundle).toBeUndefined();
    }
  });

  it("renders no cert-manager object, and NetworkPolicies: the webhook port from any source when no apiserver address can be looked up, health only from the node", () => {
    const objects = objectsOf(s.name);
    expect(objects.filter((o) => o.apiVersion?.startsWith("cert-manager.io"))).toEqual([]);
    const webhook = getObject<V1NetworkPolicy>(objects, "NetworkPolicy", `${name()}-webhook`, s.namespace);
    expect(webhook.spec!.ingress).toEqual([{ ports: [{ protocol: "TCP", port: 8443 }] }]);
    const storage = getObject<V1NetworkPolicy>(objects, "NetworkPolicy", `${name()}-storage`, s.namespace);
    expect(storage.spec!.ingress).toEqual([{ ports: [{ protocol: "TCP", port: 9000 }], from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "velero" } } }] }]);
    expect(storage.spec!.egress).toEqual([]);
  });
});

// --- the other scenarios --------------------------------------------------------------------------

describe("storage modes", () => {
  it("nfs: a ReadWriteMany PersistentVolume with the mount options, two --shared replicas rolling, a PDB", () => {
    const s = scenario("nfs");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const pv = getObject<V1PersistentVolume>(objects, "PersistentVolume", `${s.namespace}-${name}-storage`);
    expect(pv.spec).toMatchObject({
      capacity: { storage: "500Gi" },
      accessModes: ["ReadWriteMany"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "",
      mountOptions: ["nfsvers=4.1", "hard"],
      nfs: { server: "nfs.example.internal", path: "/exports/velero" },
      claimRef: { namespace: s.namespace, name: `${name}-storage` },
    });
    expect(pv.spec!.hostPath).toBeUndefined();
    expect(pv.spec!.nodeAffinity).toBeUndefined();
    const pvc = getObject<V1PersistentVolumeClaim>(objects, "PersistentVolumeClaim", `${name}-storage`, s.namespace);
    expect(pvc.spec).toMatchObject({ accessModes: ["ReadWriteMany"], volumeName: pv.metadata!.name, storageClassName: "" });
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name}-storage`, s.namespace);
    expect(deployment.spec!.replicas).toBe(2);
    expect(deployment.spec!.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(argsOf(deployment)).toEqual([
      ...STORAGE_BASE_ARGS,
      "--region=eu-west-1",
      "--bucket=cluster-backups",
      "--public-url=https://backups.example.com",
      "--no-bucket-changes",
      "--shared",
      "--tls-cert=/etc/app-snapshots/tls/tls.crt",
      "--tls-key=/etc/app-snapshots/tls/tls.key",
    ]);
    expect(deployment.spec!.template.spec!.nodeSelector).toBeUndefined();
    expect(getObject<V1PodDisruptionBudget>(objects, "PodDisruptionBudget", `${name}-storage`, s.namespace).spec!.maxUnavailable).toBe(1);
  });

  it("existingClaim: mounts the admin's claim, makes no volume objects, allows bucket changes when asked", () => {
    const s = scenario("existing-claim");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    expect(objectsOfKind(objects, "PersistentVolume")).toEqual([]);
    expect(objectsOfKind(objects, "PersistentVolumeClaim")).toEqual([]);
    const storage = getObject<V1Deployment>(objects, "Deployment", `${name}-storage`, s.namespace);
    expect(storage.spec!.template.spec!.volumes?.find((v) => v.name === "data")?.persistentVolumeClaim).toEqual({ claimName: "velero-backups" });
    expect(storage.spec!.replicas).toBe(2);
    expect(argsOf(storage)).toContain("--shared");
    expect(argsOf(storage)).not.toContain("--no-bucket-changes");
    expect(getObject<V1Deployment>(objects, "Deployment", `${name}-webhook`, s.namespace).spec!.replicas).toBe(3);
    const mutating = getObject<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration", `${name}-pods`);
    expect(mutating.webhooks![0]!.namespaceSelector!.matchExpressions![0]!.values).toEqual(["kube-system", "kube-public", "kube-node-lease", s.namespace, "monitoring", "ingress-nginx"]);
  });
});

describe("certificate modes", () => {
  it("cert-manager: a self-signed CA chain, the serving Certificate, cainjector annotations, the Secret mounted", () => {
    const s = scenario("cert-manager");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const svc = `${name}-webhook`;
    expect(getObject(objects, "Issuer", `${name}-webhook-selfsigned`, s.namespace)).toMatchObject({ apiVersion: "cert-manager.io/v1", spec: { selfSigned: {} } });
    expect(getObject<Certificate>(objects, "Certificate", `${name}-webhook-ca`, s.namespace).spec).toEqual({
      isCA: true,
      commonName: `${name}-webhook-ca`,
      secretName: `${name}-webhook-ca`,
      duration: "43800h",
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      issuerRef: { name: `${name}-webhook-selfsigned`, kind: "Issuer", group: "cert-manager.io" },
    });
    expect(getObject(objects, "Issuer", `${name}-webhook-ca`, s.namespace)).toMatchObject({ spec: { ca: { secretName: `${name}-webhook-ca` } } });
    expect(getObject<Certificate>(objects, "Certificate", svc, s.namespace).spec).toEqual({
      secretName: `${name}-webhook-tls`,
      dnsNames: [svc, `${svc}.${s.namespace}`, `${svc}.${s.namespace}.svc`],
      duration: "720h",
      renewBefore: "240h",
      usages: ["server auth", "digital signature"],
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      issuerRef: { name: `${name}-webhook-ca`, kind: "Issuer", group: "cert-manager.io" },
    });
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      const config = only(objectsOfKind<V1MutatingWebhookConfiguration>(objects, kind), kind);
      expect(config.metadata!.annotations).toEqual({ "cert-manager.io/inject-ca-from": `${s.namespace}/${svc}` });
      expect(config.webhooks![0]!.clientConfig.caBundle).toBeUndefined();
    }
    const deployment = getObject<V1Deployment>(objects, "Deployment", svc, s.namespace);
    expect(argsOf(deployment)).toEqual([
      "webhook",
      "--host=",
      "--port=8443",
      "--health-port=8080",
      "--tls-cert=/etc/app-snapshots/tls/tls.crt",
      "--tls-key=/etc/app-snapshots/tls/tls.key",
      "--velero-service-account=system:serviceaccount:velero:velero",
      "--velero-service-account=system:serviceaccount:velero:velero-server",
    ]);
    expect(containerOf(deployment).volumeMounts).toContainEqual({ name: "tls", mountPath: "/etc/app-snapshots/tls", readOnly: true });
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({ name: "tls", secret: { secretName: `${name}-webhook-tls`, defaultMode: 0o440 } });
    // cert-manager rotates: the process needs neither its own Secret, a Lease nor patch on the configurations.
    expect(findObject(objects, "Role", svc, s.namespace)).toBeUndefined();
    const clusterRole = getObject<V1ClusterRole>(objects, "ClusterRole", svc);
    expect(clusterRole.rules!.filter((r) => r.apiGroups?.includes("admissionregistration.k8s.io"))).toEqual([]);
  });

  it("cert-manager with an issuerRef: only the serving Certificate, signed by that issuer", () => {
    const s = scenario("cert-manager-issuer");
    const objects = objectsOf(s.name);
    expect(objectsOfKind(objects, "Issuer")).toEqual([]);
    // The webhook's and the storage's serving certificates.
    const certificates = objectsOfKind<Certificate>(objects, "Certificate");
    expect(certificates.map((c) => c.metadata!.name)).toEqual([`${fullname(s)}-webhook`, `${fullname(s)}-storage`]);
    for (const certificate of certificates) expect(certificate.spec.issuerRef).toEqual({ name: "corporate-ca", kind: "ClusterIssuer", group: "cert-manager.io" });
  });

  it("existing Secret: caBundle from certs.caBundle, the Secret mounted, one replica and so no PDB", () => {
    const s = scenario("existing-secret");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const values = parse(readFileSync(path.join(chartDir, "ci", "existing-secret-values.yaml"), "utf8")) as { certs: { caBundle: string } };
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      const config = only(objectsOfKind<V1MutatingWebhookConfiguration>(objects, kind), kind);
      expect(Buffer.from(config.webhooks![0]!.clientConfig.caBundle!, "base64").toString()).toBe(values.certs.caBundle);
      expect(config.metadata!.annotations).toBeUndefined();
    }
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name}-webhook`, s.namespace);
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({ name: "tls", secret: { secretName: "webhook-serving-cert", defaultMode: 0o440 } });
    expect(argsOf(deployment)).toContain("--tls-cert=/etc/app-snapshots/tls/tls.crt");
    expect(deployment.spec!.replicas).toBe(1);
    expect(objectsOfKind(objects, "PodDisruptionBudget")).toEqual([]);
    expect(findObject(objects, "Role", `${name}-webhook`, s.namespace)).toBeUndefined();
  });

  it("url mode: the apiserver calls webhook.url instead of the Service", () => {
    const s = scenario("url-mode");
    const objects = objectsOf(s.name);
    const mutating = only(objectsOfKind<V1MutatingWebhookConfiguration>(objects, "MutatingWebhookConfiguration"), "mutating");
    const validating = only(objectsOfKind<V1ValidatingWebhookConfiguration>(objects, "ValidatingWebhookConfiguration"), "validating");
    expect(mutating.webhooks![0]!.clientConfig).toEqual({ url: "https://127.0.0.1:9443/mutate/pods" });
    expect(validating.webhooks![0]!.clientConfig).toEqual({ url: "https://127.0.0.1:9443/validate/velero" });
  });
});

describe("components switched off render nothing of their own", () => {
  it("storage and the Velero webhook off: no storage object, no validating configuration, no rule or flag for it", () => {
    const s = scenario("components-disabled");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    expect(objects.filter((o) => componentOf(o) === "storage")).toEqual([]);
    expect(objects.filter((o) => ["PersistentVolume", "PersistentVolumeClaim", "Secret"].includes(o.kind!))).toEqual([]);
    expect(objectsOfKind(objects, "ValidatingWebhookConfiguration")).toEqual([]);
    getObject(objects, "MutatingWebhookConfiguration", `${name}-pods`);
    const args = argsOf(getObject<V1Deployment>(objects, "Deployment", `${name}-webhook`, s.namespace));
    expect(args).toContain(`--mutating-webhook-configuration=${name}-pods`);
    expect(args.filter((a) => a.startsWith("--validating-webhook-configuration"))).toEqual([]);
    const rules = getObject<V1ClusterRole>(objects, "ClusterRole", `${name}-webhook`).rules!;
    expect(rules.filter((r) => r.resources?.includes("validatingwebhookconfigurations"))).toEqual([]);
    expect(rules.filter((r) => r.resources?.includes("mutatingwebhookconfigurations"))).toHaveLength(1);
  });

  it("webhook off: only storage objects", () => {
    const s = scenario("webhook-disabled");
    const objects = objectsOf(s.name);
    expect(objects.filter((o) => componentOf(o) !== "storage").map((o) => `${o.kind} ${o.metadata?.name}`)).toEqual([]);
    expect(objects.filter((o) => o.kind!.includes("Webhook") || o.kind!.includes("Role"))).toEqual([]);
    getObject(objects, "Deployment", `${fullname(s)}-storage`, s.namespace);
  });
});

describe("storage TLS and client authentication", () => {
  const storageArgs = (s: Scenario) => argsOf(getObject<V1Deployment>(objectsOf(s.name), "Deployment", `${fullname(s)}-storage`, s.namespace));
  const webhookArgs = (s: Scenario) => argsOf(getObject<V1Deployment>(objectsOf(s.name), "Deployment", `${fullname(s)}-webhook`, s.namespace));
  const TLS_ARGS = ["--tls-cert=/etc/app-snapshots/tls/tls.crt", "--tls-key=/etc/app-snapshots/tls/tls.key"];

  it("cert-manager: a storage Certificate from the same issuer for the Service's names, into the Secret the storage mounts", () => {
    const s = scenario("cert-manager");
    const name = fullname(s);
    const certificate = getObject<Certificate>(objectsOf(s.name), "Certificate", `${name}-storage`, s.namespace);
    expect(certificate.spec).toMatchObject({
      secretName: `${name}-storage-tls`,
      dnsNames: [`${name}-storage`, `${name}-storage.${s.namespace}`, `${name}-storage.${s.namespace}.svc`],
      duration: "168h",
      usages: ["server auth", "digital signature"],
      issuerRef: { name: `${name}-webhook-ca`, kind: "Issuer", group: "cert-manager.io" },
    });
    expect(storageArgs(s)).toEqual(expect.arrayContaining(TLS_ARGS));
    expect(webhookArgs(s).filter((a) => a.startsWith("--storage-"))).toEqual([]);
  });

  it("existing Secret: the storage mounts the admin's Secret and the webhook issues nothing", () => {
    const s = scenario("existing-secret");
    const deployment = getObject<V1Deployment>(objectsOf(s.name), "Deployment", `${fullname(s)}-storage`, s.namespace);
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({ name: "tls", secret: { secretName: "storage-serving-cert", defaultMode: 288 } });
    expect(argsOf(deployment)).toEqual(expect.arrayContaining(TLS_ARGS));
    expect(webhookArgs(s).filter((a) => a.startsWith("--storage-"))).toEqual([]);
  });

  it("plain HTTP only by storage.tls.enabled=false: no certificate, flag, volume or permission for it", () => {
    const s = scenario("storage-plain-http");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    expect(storageArgs(s).filter((a) => a.startsWith("--tls-"))).toEqual([]);
    expect(getObject<V1Deployment>(objects, "Deployment", `${name}-storage`, s.namespace).spec!.template.spec!.volumes!.map((v) => v.name)).toEqual(["data", "credentials", "tmp"]);
    expect(webhookArgs(s).filter((a) => a.startsWith("--storage-"))).toEqual([]);
    const rules = [...objectsOfKind<V1Role>(objects, "Role")].flatMap((r) => r.rules ?? []);
    expect(rules.filter((r) => r.resourceNames?.includes(`${name}-storage-tls`) || r.resources?.includes("backupstoragelocations"))).toEqual([]);
  });

  it("LVP stays plain HTTP beside TLS on S3 (local-volume-provider builds http:// URLs)", () => {
    expect(storageArgs(scenario("network-policy")).slice(-3)).toEqual([...TLS_ARGS, "--lvp-plain-http"]);
  });

  it("client authentication: the CA from the admin's ConfigMap, the allowed names as flags; extra storage names, lifetime and a metrics peer", () => {
    const s = scenario("client-auth");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const args = webhookArgs(s);
    expect(args).toEqual(expect.arrayContaining(["--client-ca=/etc/app-snapshots/client-ca/ca.crt", "--client-name=kube-apiserver-webhook-client"]));
    expect(args).toEqual(expect.arrayContaining(["--storage-cert-dns=backups.example.com", "--storage-cert-ip=10.96.0.50", "--storage-cert-lifetime=24h"]));
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name}-webhook`, s.namespace);
    expect(deployment.spec!.template.spec!.volumes).toContainEqual({ name: "client-ca", configMap: { name: "apiserver-client-ca", items: [{ key: "ca.crt", path: "ca.crt" }] } });
    expect(containerOf(deployment).volumeMounts).toContainEqual({ name: "client-ca", mountPath: "/etc/app-snapshots/client-ca", readOnly: true });
    expect(objectsOfKind(objects, "ConfigMap")).toEqual([]);
    const health = { ports: [{ protocol: "TCP", port: 8080 }], from: [{ namespaceSelector: { matchLabels: { name: "monitoring" } } }] };
    for (const component of ["webhook", "storage"]) expect(getObject<V1NetworkPolicy>(objects, "NetworkPolicy", `${name}-${component}`, s.namespace).spec!.ingress).toContainEqual(health);
  });

  it("client authentication with caBundle: the chart keeps it in a ConfigMap", async () => {
    const caPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const objects = await renderChart({
      valuesFiles: ["ci/hostpath-values.yaml"],
      set: { "webhook.clientAuth.enabled": "true", "webhook.clientAuth.caBundle": caPem, "webhook.clientAuth.allowedNames[0]": "kube-apiserver" },
    });
    const configMap = getObject<{ data: Record<string, string> } & KubernetesObject>(objects, "ConfigMap", "app-snapshots-webhook-client-ca", "app-snapshots");
    expect(configMap.data).toEqual({ "ca.crt": caPem });
  });
});

describe("network policies, LVP and value overrides", () => {
  it("Velero in the release namespace: one credentials Secret, Roles that do not collide", () => {
    const s = scenario("velero-here");
    const objects = objectsOf(s.name);
    expect(objectsOfKind(objects, "Secret").map((o) => `${o.metadata!.namespace}/${o.metadata!.name}`)).toEqual([`${s.namespace}/${fullname(s)}-storage-credentials`]);
    expect(objectsOfKind(objects, "Role").map((o) => `${o.metadata!.namespace}/${o.metadata!.name}`).sort()).toEqual(
      [`${fullname(s)}-storage-lvp`, `${fullname(s)}-webhook`, `${fullname(s)}-webhook-velero`].map((name) => `${s.namespace}/${name}`),
    );
  });

  it("network policies: webhook ingress from the given peers, egress to the apiserver and DNS; storage from Velero's namespace", () => {
    const s = scenario("network-policy");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const webhook = getObject<V1NetworkPolicy>(objects, "NetworkPolicy", `${name}-webhook`, s.namespace);
    expect(webhook.spec).toEqual({
      podSelector: { matchLabels: { "app.kubernetes.io/name": "app-snapshots", "app.kubernetes.io/instance": s.releaseName, "app.kubernetes.io/component": "webhook" } },
      policyTypes: ["Ingress", "Egress"],
      // Health and metrics: only the pod's own node (the kubelet), which NetworkPolicy always allows.
      ingress: [{ ports: [{ protocol: "TCP", port: 8443 }], from: [{ ipBlock: { cidr: "10.0.0.0/24" } }] }],
      egress: [
        {
          to: [{ ipBlock: { cidr: "10.0.0.1/32" } }],
          ports: [
            { protocol: "TCP", port: 443 },
            { protocol: "TCP", port: 6443 },
          ],
        },
        {
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
      ],
    });
    const storage = getObject<V1NetworkPolicy>(objects, "NetworkPolicy", `${name}-storage`, s.namespace);
    expect(storage.spec!.ingress).toEqual([
      {
        ports: [
          { protocol: "TCP", port: 9000 },
          { protocol: "TCP", port: 3000 },
        ],
        from: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "velero" } } },
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } },
        ],
      },
    ]);
    // With LVP on, the storage pod reads one Secret from the API and may reach nothing else.
    expect(storage.spec!.egress).toEqual([webhook.spec!.egress![0]]);
  });

  it("LVP: port 3000, the Velero namespace flag, an API token and get on lvp-signingsecret only", () => {
    const s = scenario("network-policy");
    const objects = objectsOf(s.name);
    const name = fullname(s);
    const deployment = getObject<V1Deployment>(objects, "Deployment", `${name}-storage`, s.namespace);
    expect(argsOf(deployment).slice(-5, -3)).toEqual(["--lvp-listen=:3000", "--velero-namespace=velero"]);
    expect(containerOf(deployment).ports).toContainEqual({ name: "lvp", containerPort: 3000, protocol: "TCP" });
    expect(deployment.spec!.template.spec!.automountServiceAccountToken).toBe(true);
    expect(getObject<V1Service>(objects, "Service", `${name}-storage`, s.namespace).spec!.ports).toContainEqual({ name: "lvp", port: 3000, targetPort: "lvp", protocol: "TCP" });
    const role = getObject<V1Role>(objects, "Role", `${name}-storage-lvp`, "velero");
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["secrets"], resourceNames: ["lvp-signingsecret"], verbs: ["get"] }]);
    expect(getObject<V1RoleBinding>(objects, "RoleBinding", `${name}-storage-lvp`, "velero").subjects).toEqual([{ kind: "ServiceAccount", name: `${name}-storage`, namespace: s.namespace }]);
  });

  it("overrides: fullnameOverride, image tag and digest, pull secrets, priority class, pod labels and annotations", () => {
    const s = scenario("overrides");
    const objects = objectsOf(s.name);
    const name = s.set!.fullnameOverride!;
    for (const component of ["webhook", "storage"]) {
      const deployment = getObject<V1Deployment>(objects, "Deployment", `${name}-${component}`, s.namespace);
      const pod = deployment.spec!.template;
      expect(containerOf(deployment).image).toBe(`ghcr.io/app-snapshots/app-snapshots:1.2.3@${DIGEST}`);
      expect(pod.spec!.imagePullSecrets).toEqual([{ name: "regcred" }]);
      expect(pod.spec!.priorityClassName).toBe(`pc-${run}`);
      expect(pod.metadata!.labels).toMatchObject({ tier: "infra", team: "backup" });
      expect(pod.metadata!.annotations).toEqual({ note: "hello" });
    }
    getObject(objects, "MutatingWebhookConfiguration", `${name}-pods`);
  });
});

// --- against the real kube-apiserver -----------------------------------------------------------------

async function ensureNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  try {
    await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name, labels } });
  } catch (err) {
    if (!(err instanceof KubeRequestError && err.status === 409)) throw err;
  }
}

describe("the real kube-apiserver", () => {
  const pssNamespace = `chart-pss-${run}`;

  beforeAll(async () => {
    const crds = await installCrdFiles(kc, certManagerCrdFiles());
    expect(crds).toEqual(["issuers.cert-manager.io", "certificates.cert-manager.io"]);
    await ensureNamespace("velero");
    // The overrides scenario names a PriorityClass; pods naming a missing one are refused.
    await kubeRequest(kc, "POST", "/apis/scheduling.k8s.io/v1/priorityclasses", { metadata: { name: `pc-${run}` }, value: 1000 });
    await ensureNamespace(pssNamespace, {
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/enforce-version": "latest",
      "pod-security.kubernetes.io/warn": "restricted",
      "pod-security.kubernetes.io/warn-version": "latest",
    });
  }, 120_000);

  it.each(scenarios)("accepts every object of $name (server-side apply, dry run)", async (s) => {
    await ensureNamespace(s.namespace);
    const objects = objectsOf(s.name);
    const applied = await applyObjects(kc, objects, { dryRun: true });
    expect(applied.map((o) => `${o.kind} ${o.metadata?.name}`)).toEqual(objects.map((o) => `${o.kind} ${o.metadata?.name}`));
  });

  const podFrom = (deployment: V1Deployment) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `${deployment.metadata!.name}-pss`, labels: deployment.spec!.template.metadata!.labels },
    spec: structuredClone(deployment.spec!.template.spec!),
  });
  const createPod = (pod: object) => kubeRequest(kc, "POST", `/api/v1/namespaces/${pssNamespace}/pods?dryRun=All`, pod);

  it.each(scenarios)("admits the pods of $name under Pod Security restricted:latest without a warning", async (s) => {
    const deployments = objectsOfKind<V1Deployment>(objectsOf(s.name), "Deployment");
    expect(deployments.length).toBeGreaterThan(0);
    for (const deployment of deployments) {
      const result = await createPod(podFrom(deployment));
      expect(result.status, deployment.metadata!.name).toBe(201);
      expect(result.warnings, deployment.metadata!.name).toEqual([]);
    }
  });

  it("rejects the same pod without allowPrivilegeEscalation: false, or with runAsNonRoot: false (Pod Security is enforced here)", async () => {
    const deployment = getObject<V1Deployment>(objectsOf("defaults"), "Deployment", `${fullname(scenario("defaults"))}-webhook`, scenario("defaults").namespace);
    const escalating = podFrom(deployment);
    delete escalating.spec.containers[0]!.securityContext!.allowPrivilegeEscalation;
    const asRoot = podFrom(deployment);
    asRoot.spec.securityContext!.runAsNonRoot = false;
    delete asRoot.spec.containers[0]!.securityContext!.runAsNonRoot;
    for (const [pod, violation] of [
      [escalating, "allowPrivilegeEscalation != false"],
      [asRoot, "runAsNonRoot != true"],
    ] as const) {
      const err = await createPod(pod).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, "Pod Security admitted a pod that violates restricted").toBeInstanceOf(KubeRequestError);
      expect((err as KubeRequestError).status).toBe(403);
      expect((err as KubeRequestError).message).toContain('violates PodSecurity "restricted:latest"');
      expect((err as KubeRequestError).message).toContain(violation);
    }
  });

  describe("lookup on upgrades (helm template --dry-run=server reads the cluster)", () => {
    const base = scenario("defaults");
    const fresh = (tag: string): Scenario => ({ ...base, name: tag, releaseName: `lk${tag}-${run}`, namespace: `chart-lk${tag}-${run}` });
    const ini = (id: string) => `[default]\naws_access_key_id=${id}\naws_secret_access_key=${"s".repeat(40)}\n`;
    const createSecret = (namespace: string, name: string, data: Record<string, string>) =>
      kubeRequest(kc, "POST", `/api/v1/namespaces/${namespace}/secrets`, { metadata: { name }, stringData: data });
    const renderAgainstCluster = (s: Scenario, valuesFiles = s.valuesFiles) => renderChart({ ...s, valuesFiles, kubeconfig: cluster.kubeconfigPath });

    it("keeps the storage credentials of an existing Secret, verbatim, in both namespaces", async () => {
      const s = fresh("a");
      await ensureNamespace(s.namespace);
      await createSecret(s.namespace, `${fullname(s)}-storage-credentials`, { cloud: ini("KEPTKEPTKEPTKEPTKEPT") });
      const objects = await renderAgainstCluster(s);
      for (const namespace of [s.namespace, "velero"]) expect(decodeCloud(getObject<V1Secret>(objects, "Secret", `${fullname(s)}-storage-credentials`, namespace))).toBe(ini("KEPTKEPTKEPTKEPTKEPT"));
    });

    it("takes the credentials from Velero's copy when only the copy is left", async () => {
      const s = fresh("b");
      await ensureNamespace(s.namespace);
      await createSecret("velero", `${fullname(s)}-storage-credentials`, { cloud: ini("COPYCOPYCOPYCOPYCOPY") });
      const objects = await renderAgainstCluster(s);
      for (const namespace of [s.namespace, "velero"]) expect(decodeCloud(getObject<V1Secret>(objects, "Secret", `${fullname(s)}-storage-credentials`, namespace))).toBe(ini("COPYCOPYCOPYCOPYCOPY"));
    });

    it("renders caBundle from the self-managed Secret's ca.crt, and leaves it to cainjector in cert-manager mode", async () => {
      const s = fresh("c");
      await ensureNamespace(s.namespace);
      const caPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
      await createSecret(s.namespace, `${fullname(s)}-webhook-tls`, { "ca.crt": caPem });
      const objects = await renderAgainstCluster(s);
      for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
        const config = only(objectsOfKind<V1MutatingWebhookConfiguration>(objects, kind), kind);
        expect(Buffer.from(config.webhooks![0]!.clientConfig.caBundle ?? "", "base64").toString(), kind).toBe(caPem);
      }
      const certManager = await renderAgainstCluster(s, ["ci/cert-manager-values.yaml"]);
      for (const config of objectsOfKind<V1MutatingWebhookConfiguration>(certManager, "MutatingWebhookConfiguration")) expect(config.webhooks![0]!.clientConfig.caBundle).toBeUndefined();
    });

    it("refuses two storage replicas on an existing claim that is not ReadWriteMany", async () => {
      const s = fresh("d");
      await ensureNamespace(s.namespace);
      const claim = (name: string, mode: string) =>
        kubeRequest(kc, "POST", `/api/v1/namespaces/${s.namespace}/persistentvolumeclaims`, {
          metadata: { name },
          spec: { accessModes: [mode], resources: { requests: { storage: "1Gi" } }, storageClassName: "" },
        });
      await claim("rwo", "ReadWriteOnce");
      await claim("rwx", "ReadWriteMany");
      const args = { releaseName: s.releaseName, namespace: s.namespace, kubeconfig: cluster.kubeconfigPath };
      const refused = await helmTemplate({ ...args, set: { "storage.volume.existingClaim": "rwo", "storage.replicas": "2" } });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`storage.replicas=2 shares one volume between pods, but PersistentVolumeClaim ${s.namespace}/rwo is not ReadWriteMany`);
      const accepted = await helmTemplate({ ...args, set: { "storage.volume.existingClaim": "rwx", "storage.replicas": "2" } });
      expect(accepted.code, accepted.stderr).toBe(0);
    });
  });

  describe("NOTES.txt", () => {
    const notesOf = async (s: Scenario) => {
      const result = await helm(["install", s.releaseName, chartDir, "--namespace", s.namespace, "--dry-run=server", "--output", "json", ...valuesArgs(s)], { kubeconfig: cluster.kubeconfigPath });
      expect(result.code, result.stderr).toBe(0);
      return (JSON.parse(result.stdout) as { info: { notes: string } }).info.notes;
    };
    /**
     * The BackupStorageLocation of the NOTES' heredoc, expanded by bash as the admin's shell would, with a
     * kubectl on PATH that answers the caCert lookup with `caBase64` (the Secret's data).
     */
    const locationIn = (notes: string, caBase64: string) => {
      // The apply reads the heredoc from stdin and prints it: what bash made of it.
      const expanded = runNotesCommand(locationCommandIn(notes), { script: `#!/bin/sh\nif [ "$1" = apply ]; then cat; else printf '%s' '${caBase64}'; fi\n` });
      return only(parseManifests(expanded, "NOTES.txt"), "objects in the NOTES heredoc");
    };
    const CA_BASE64 = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").toString("base64");

    it.each(["defaults", "nfs"])("prints a BackupStorageLocation (%s) over https with caCert from the storage Secret, that the apiserver accepts", async (name) => {
      const s = scenario(name);
      const notes = await notesOf(s);
      const location = locationIn(notes, CA_BASE64);
      const nfs = name === "nfs";
      expect(location).toEqual({
        apiVersion: "velero.io/v1",
        kind: "BackupStorageLocation",
        metadata: { name: fullname(s), namespace: "velero" },
        spec: {
          provider: "velero.io/aws",
          objectStorage: { bucket: nfs ? "cluster-backups" : "velero", caCert: CA_BASE64 },
          credential: { name: `${fullname(s)}-storage-credentials`, key: "cloud" },
          config: {
            region: nfs ? "eu-west-1" : "us-east-1",
            s3ForcePathStyle: "true",
            s3Url: `https://${fullname(s)}-storage.${s.namespace}.svc:9000`,
            ...(nfs ? { publicUrl: "https://backups.example.com" } : {}),
          },
        },
      });
      await applyObjects(kc, [location], { dryRun: true });
      // The printed command reads the Secret the webhook makes, after waiting for it.
      expect(notes).toContain(`caCert: $(kubectl -n ${s.namespace} get secret ${fullname(s)}-storage-tls -o jsonpath='{.data.ca\\.crt}')`);
      expect(notes).toContain(`kubectl -n ${s.namespace} wait --for=create secret/${fullname(s)}-storage-tls --timeout=5m`);
      expect(notes).toContain("The webhook keeps this location's caCert current when its CA rotates.");
      expect(notes).toContain("--cacert storage-ca.crt");
      expect(notes).toContain(`kubectl get mutatingwebhookconfiguration ${fullname(s)}-pods`);
      expect(notes).toContain(`kubectl get validatingwebhookconfiguration ${fullname(s)}-velero`);
      expect(notes).toContain("--dry-run=server");
      expect(notes).toContain(`kubectl -n ${s.namespace} logs deployment/${fullname(s)}-webhook`);
    });

    it("plain HTTP: an http s3Url, no caCert, and a warning; existing Secret with caBundle: caCert printed as is", async () => {
      const plain = await notesOf(scenario("storage-plain-http"));
      const location = locationIn(plain, CA_BASE64) as { spec: { objectStorage: Record<string, string>; config: Record<string, string> } };
      expect(location.spec.objectStorage).toEqual({ bucket: "velero" });
      expect(location.spec.config.s3Url).toMatch(/^http:\/\//);
      expect(plain).toContain("over plain HTTP (storage.tls.enabled=false: anyone on the pod network can read backups in transit)");
      const s = scenario("existing-secret");
      const values = parse(readFileSync(path.join(chartDir, "ci", "existing-secret-values.yaml"), "utf8")) as { storage: { tls: { caBundle: string } } };
      const own = locationIn(await notesOf(s), "unused") as { spec: { objectStorage: Record<string, string> } };
      expect(Buffer.from(own.spec.objectStorage.caCert!, "base64").toString()).toBe(values.storage.tls.caBundle);
    });

    it("mentions only the components that are on", async () => {
      const notes = await notesOf(scenario("components-disabled"));
      expect(notes).not.toContain("BackupStorageLocation");
      expect(notes).not.toContain("validatingwebhookconfiguration");
      expect(notes).toContain("mutatingwebhookconfiguration");
    });
  });
});
