// Certificates and kubeconfigs of the real node, from the project's own CA code (src/certs). File names match
// the envtest control plane's (ca.crt, ca.key, kubeconfig), so identityKubeConfig() works on either.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createCa, createSigningKey, issueCertificate, type KeyPair } from "../../../src/certs/authority.js";
import { kubeconfigYaml } from "../controlPlane.js";
import { COREDNS_USER } from "./coredns.js";
import { BRIDGE_IP, KUBERNETES_SERVICE_IP, NODE_NAME } from "./layout.js";

export interface NodePki {
  dir: string;
  caPem: string;
  /** The admin's client certificate (group system:masters), also in kubeconfig.admin. */
  admin: KeyPair;
  ca: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  /** The apiserver's client certificate towards the kubelet (logs, exec, port-forward). */
  kubeletClientCert: string;
  kubeletClientKey: string;
  kubeletServingCert: string;
  kubeletServingKey: string;
  saKey: string;
  saPub: string;
  kubeconfig: { admin: string; kubelet: string; controllerManager: string; scheduler: string; proxy: string; coredns: string };
}

const DAYS = 7;

export function writePki(dir: string, url: string): NodePki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string, content: string) => {
    const target = path.join(dir, name);
    writeFileSync(target, content, { mode: 0o600 });
    return target;
  };
  const ca = createCa({ commonName: "app-snapshots-node-ca", validityDays: DAYS });
  const client = (commonName: string, organizations: string[] = []) => issueCertificate(ca, { commonName, organizations, usage: "client", validityDays: DAYS });
  const kubeconfig = (name: string, user: string, pair: KeyPair) => file(name, kubeconfigYaml(url, ca.certPem, user, pair));
  // Pods reach the apiserver at the `kubernetes` Service IP (DNATed to loopback), so that IP is a SAN.
  const apiserver = issueCertificate(ca, {
    commonName: "kube-apiserver",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    ipAddresses: ["127.0.0.1", KUBERNETES_SERVICE_IP, BRIDGE_IP],
    usage: "server",
    validityDays: DAYS,
  });
  const kubeletServing = issueCertificate(ca, { commonName: NODE_NAME, dnsNames: [NODE_NAME], ipAddresses: ["127.0.0.1"], usage: "server", validityDays: DAYS });
  // system:masters: the kubelet authorizes the apiserver's calls by SubjectAccessReview.
  const kubeletClient = client("kube-apiserver-kubelet-client", ["system:masters"]);
  const sa = createSigningKey();
  const admin = client("admin", ["system:masters"]);
  return {
    dir,
    caPem: ca.certPem,
    admin,
    ca: file("ca.crt", ca.certPem),
    caKey: file("ca.key", ca.keyPem),
    apiserverCert: file("apiserver.crt", apiserver.certPem),
    apiserverKey: file("apiserver.key", apiserver.keyPem),
    kubeletClientCert: file("apiserver-kubelet-client.crt", kubeletClient.certPem),
    kubeletClientKey: file("apiserver-kubelet-client.key", kubeletClient.keyPem),
    kubeletServingCert: file("kubelet.crt", kubeletServing.certPem),
    kubeletServingKey: file("kubelet.key", kubeletServing.keyPem),
    saKey: file("sa.key", sa.privateKeyPem),
    saPub: file("sa.pub", sa.publicKeyPem),
    kubeconfig: {
      admin: kubeconfig("kubeconfig", "admin", admin),
      // The Node authorizer and NodeRestriction know a kubelet by this name and group.
      kubelet: kubeconfig("kubelet.kubeconfig", `system:node:${NODE_NAME}`, client(`system:node:${NODE_NAME}`, ["system:nodes"])),
      // Users the default RBAC bootstrap policy binds (system:kube-controller-manager, ...).
      controllerManager: kubeconfig("controller-manager.kubeconfig", "system:kube-controller-manager", client("system:kube-controller-manager")),
      scheduler: kubeconfig("scheduler.kubeconfig", "system:kube-scheduler", client("system:kube-scheduler")),
      proxy: kubeconfig("proxy.kubeconfig", "system:kube-proxy", client("system:kube-proxy")),
      // Granted read access by coredns.ts.
      coredns: kubeconfig("coredns.kubeconfig", COREDNS_USER, client(COREDNS_USER)),
    },
  };
}
