// The flags and configuration files of each node component, as pure functions of the run's paths and ports.
// Everything binds to loopback, a unix socket in the run dir, or (pods only) the private bridge.
import { stringify } from "yaml";
import { singleEtcdArgs } from "../controlPlane.js";
import { CLUSTER_DOMAIN } from "./coredns.js";
import type { NodePki } from "./pki.js";
import { BRIDGE, BRIDGE_IP, CGROUP_ROOT, CNI_NETWORK, NODE_NAME, POD_CIDR, SERVICE_CIDR, runPath } from "./layout.js";
import { CNI_BIN_DIR } from "./tools.js";

export interface Ports {
  etcd: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kubelet: number;
  kubeletHealthz: number;
  proxyHealthz: number;
  proxyMetrics: number;
  corednsReady: number;
}

export const apiserverUrl = (ports: Ports) => `https://127.0.0.1:${ports.apiserver}`;
export const containerdSocket = () => runPath("containerd", "containerd.sock");

export function etcdArgs(ports: Ports): string[] {
  return singleEtcdArgs("node", runPath("etcd"), `http://127.0.0.1:${ports.etcd}`, `http://127.0.0.1:${ports.etcdPeer}`);
}

/** The envtest flags (controlPlane.ts) plus what a node needs: Node authorization, kubelet client certs, SA issuing. */
export function apiserverArgs(ports: Ports, pki: NodePki): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${ports.apiserver}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.ca}`,
    `--cert-dir=${pki.dir}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
    // The lease reconciler would publish 127.0.0.1 as the `kubernetes` endpoint, which is invalid; pods reach the
    // apiserver through the harness's DNAT from the bridge instead (realNode.ts).
    "--endpoint-reconciler-type=none",
    `--kubelet-client-certificate=${pki.kubeletClientCert}`,
    `--kubelet-client-key=${pki.kubeletClientKey}`,
    `--kubelet-certificate-authority=${pki.ca}`,
    // The node is `localhost` and its kubelet listens on 127.0.0.1 only.
    "--kubelet-preferred-address-types=Hostname,InternalIP",
    // Webhook Services are called at their endpoints' pod IPs (the apiserver is not in the pod network).
    "--enable-aggregator-routing=true",
  ];
}

/** What controller-manager and scheduler share: one identity for everything, serving on loopback only. */
function loopbackComponentArgs(kubeconfig: string, port: number, name: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${runPath(name)}`,
  ];
}

export function controllerManagerArgs(ports: Ports, pki: NodePki): string[] {
  return [
    ...loopbackComponentArgs(pki.kubeconfig.controllerManager, ports.controllerManager, "controller-manager"),
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki.saKey}`,
    `--root-ca-file=${pki.ca}`,
    `--cluster-signing-cert-file=${pki.ca}`,
    `--cluster-signing-key-file=${pki.caKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // Its default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, is created at start.
    `--flex-volume-plugin-dir=${runPath("controller-manager", "flexvolume")}`,
    "--leader-elect=false",
  ];
}

export function schedulerArgs(ports: Ports, pki: NodePki): string[] {
  return [
    ...loopbackComponentArgs(pki.kubeconfig.scheduler, ports.scheduler, "scheduler"),
    "--leader-elect=false",
  ];
}

/** KubeletConfiguration (kubelet.config.k8s.io/v1beta1). */
export function kubeletConfig(ports: Ports, pki: NodePki): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: "127.0.0.1",
    port: ports.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: ports.kubeletHealthz,
    tlsCertFile: pki.kubeletServingCert,
    tlsPrivateKeyFile: pki.kubeletServingKey,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.ca } },
    authorization: { mode: "Webhook" },
    containerRuntimeEndpoint: `unix://${containerdSocket()}`,
    // No systemd here, and cgroup v1: Kubernetes >= 1.35 refuses v1 unless failCgroupV1 is false.
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/${CGROUP_ROOT}`,
    failCgroupV1: false,
    failSwapOn: false,
    // Pods resolve through CoreDNS on the bridge (coredns.ts) and nothing else: no host resolv.conf.
    resolvConf: "",
    clusterDNS: [BRIDGE_IP],
    clusterDomain: CLUSTER_DOMAIN,
    podLogsDir: runPath("pod-logs"),
    volumePluginDir: runPath("kubelet", "volume-plugins"),
    // Imported images cannot be pulled again: never garbage-collect them, never evict for a full disk.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "50Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%" },
    rotateCertificates: false,
    serializeImagePulls: false,
  });
}

export function kubeletArgs(pki: NodePki): string[] {
  return [
    `--config=${runPath("kubelet.yaml")}`,
    `--kubeconfig=${pki.kubeconfig.kubelet}`,
    `--root-dir=${runPath("kubelet")}`,
    `--hostname-override=${NODE_NAME}`,
  ];
}

/** KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), iptables mode. */
export function kubeProxyConfig(ports: Ports, pki: NodePki): string {
  return stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: { kubeconfig: pki.kubeconfig.proxy },
    mode: "iptables",
    bindAddress: "127.0.0.1",
    healthzBindAddress: `127.0.0.1:${ports.proxyHealthz}`,
    metricsBindAddress: `127.0.0.1:${ports.proxyMetrics}`,
    hostnameOverride: NODE_NAME,
    clusterCIDR: POD_CIDR,
    // NodePorts only on the bridge address: never on the uplink, and not on 127.0.0.1 (that needs route_localnet
    // on every interface).
    nodePortAddresses: [`${BRIDGE_IP}/32`],
    iptables: { localhostNodePorts: false, masqueradeAll: false },
    // Zero: kube-proxy leaves the conntrack sysctls as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
  });
}

export function kubeProxyArgs(): string[] {
  return [`--config=${runPath("kube-proxy.yaml")}`];
}

/** containerd 1.6 (config version 2): private root/state/socket, CRI on the private CNI conf dir. */
export function containerdConfig(pauseImage: string): string {
  const q = JSON.stringify;
  return [
    "version = 2",
    `root = ${q(runPath("containerd", "root"))}`,
    `state = ${q(runPath("containerd", "state"))}`,
    // Snapshotters this host cannot use; left enabled they only log errors.
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
    "[grpc]",
    `  address = ${q(containerdSocket())}`,
    "[ttrpc]",
    `  address = ${q(runPath("containerd", "containerd.sock.ttrpc"))}`,
    "[debug]",
    '  address = ""',
    "[metrics]",
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(runPath("containerd", "opt"))}`,
    // The v1 runtime is unused but required by the tasks service; its default root is /run/containerd/runc.
    '[plugins."io.containerd.runtime.v1.linux"]',
    `  runtime_root = ${q(runPath("runc-v1"))}`,
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${q(pauseImage)}`,
    // This machine lacks CAP_SYS_RESOURCE: runc could not lower a sandbox's oom_score_adj to -998 and every pod
    // failed with "can't get final child's PID from pipe: EOF".
    "  restrict_oom_score_adj = true",
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    "  enable_selinux = false",
    // Network namespaces under our state dir, not /run/netns, so the sweep finds them with the other mounts.
    "  netns_mounts_under_state_dir = true",
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    '    snapshotter = "overlayfs"',
    '    default_runtime_name = "runc"',
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '      runtime_type = "io.containerd.runc.v2"',
    '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    "        SystemdCgroup = false",
    `        Root = ${q(runPath("runc"))}`,
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = ${q(CNI_BIN_DIR)}`,
    `    conf_dir = ${q(runPath("cni", "net.d"))}`,
    "    max_conf_num = 1",
    "",
  ].join("\n");
}

/**
 * bridge + host-local on our own bridge; no masquerade (nothing is routed out anyway) and no portmap (its
 * CNI-HOSTPORT-* chains are shared with every other CNI user on the host, e.g. podman).
 */
export function cniConfig(): string {
  return `${JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: CNI_NETWORK,
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          // The default route sends Service traffic to the bridge, where kube-proxy's DNAT and our guard see it.
          ipam: { type: "host-local", ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE_IP }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: runPath("cni", "ipam") },
        },
      ],
    },
    null,
    2,
  )}\n`;
}
