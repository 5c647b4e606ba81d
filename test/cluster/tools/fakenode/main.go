// fake-node stands in for a scheduler and a kubelet on the test control plane, which has neither,
// so that real clients that need running pods (Velero's exec hooks, post-restore hooks, its
// node-agent and file-system backup) meet a node that behaves like one:
//   - it registers a Ready Node whose kubelet endpoint is this process on 127.0.0.1;
//   - it binds every unscheduled pod whose nodeSelector the Node satisfies, as a one-node scheduler
//     would (a pod that does not fit stays Pending);
//   - it lays out each pod's emptyDir volumes where a kubelet does (<pods-dir>/<uid>/volumes/
//     kubernetes.io~empty-dir/<name>);
//   - it reports pods as Running and Ready without pulling or running their images (init containers
//     as Completed), with two exceptions, next;
//   - Velero's restore-wait init container stays Running until each volume it mounts holds
//     .velero/<restore UID>; then those folders are removed: what velero-restore-helper does;
//   - pods of Velero's own image with command /velero (node-agent, its data-path pods) run the real
//     velero binary (--velero) as a process in a private mount namespace: hostPath mounts bound where
//     the pod mounts them (or, for a mount point that does not exist on this machine, the path
//     rewritten in the arguments), the termination message file bound at /dev/termination-log, env
//     with fieldRefs resolved, KUBECONFIG set; the exit code and termination message become the
//     pod's status, as a kubelet reports them;
//   - it answers the kubelet's exec endpoint with the SPDY/WebSocket protocols the apiserver proxies,
//     running the command as a local process in <root>/<namespace>/<pod>/<container> with
//     VOLUME_<name> naming the folder of each emptyDir the container mounts, and serves container
//     logs of the processes it runs;
//   - it finishes the deletion of pods on the Node, as a kubelet does after their containers stop.
//
// Test harness only: it listens on 127.0.0.1, and every command it runs was written by the tests
// or by Velero. Running velero pods needs root (mount namespaces); without it they are Failed.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the control plane")
	nodeName := flag.String("node-name", "fake-node", "name of the Node to register")
	listen := flag.String("listen", "127.0.0.1:10250", "kubelet endpoint (host:port); the host must be 127.0.0.1")
	root := flag.String("root", "", "folder under which exec commands run (<root>/<namespace>/<pod>/<container>)")
	podsDir := flag.String("pods-dir", "", "the kubelet's pods folder: pod volumes live in <pods-dir>/<uid>/volumes (default <root>/.pods)")
	veleroBinary := flag.String("velero", "", "velero binary that runs pods of Velero's image (none: they are reported Running, not run)")
	flag.Parse()
	if *kubeconfig == "" || *root == "" {
		log.Fatal("--kubeconfig and --root are required")
	}
	if *podsDir == "" {
		*podsDir = filepath.Join(*root, ".pods")
	}
	absoluteKubeconfig, err := filepath.Abs(*kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	host, portText, err := net.SplitHostPort(*listen)
	if err != nil || host != "127.0.0.1" {
		log.Fatalf("--listen must be 127.0.0.1:<port>, got %q", *listen)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		log.Fatalf("--listen port: %v", err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(config)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	runner := &podRunner{
		client: client, nodeName: *nodeName, labels: nodeLabels(*nodeName), podsDir: *podsDir, sandboxes: filepath.Join(*root, ".sandboxes"),
		velero: newVeleroRuntime(*veleroBinary, absoluteKubeconfig), statusCache: map[types.UID]string{},
	}
	server, err := serveKubelet(*listen, *root, runner)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	if err := registerNode(ctx, client, *nodeName, int32(port)); err != nil {
		log.Fatalf("registering node %s: %v", *nodeName, err)
	}
	// The Ready condition is refreshed, so nothing that reads its age takes the node for dead.
	go every(ctx, 20*time.Second, func() { heartbeat(ctx, client, *nodeName) })
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { runner.handle(ctx, obj) },
		UpdateFunc: func(_, obj any) { runner.handle(ctx, obj) },
	}); err != nil {
		log.Fatalf("pod informer: %v", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	// Files, not API events, finish a restore-wait: look again every second.
	go every(ctx, time.Second, func() {
		for _, obj := range pods.GetStore().List() {
			runner.handle(ctx, obj)
		}
	})
	log.Printf("node %s ready, kubelet endpoint https://%s", *nodeName, *listen)
	<-ctx.Done()
	runner.velero.stopAll()
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdown)
}

func nodeStatus(port int32) corev1.NodeStatus {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "FakeNodeReady",
			Message: "fake-node: a test stand-in that never runs containers", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		// Only an InternalIP: the apiserver dials the first address of its preferred types, with no fallback.
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "fake-node", ContainerRuntimeVersion: "fake-node://none",
		},
	}
}

func nodeLabels(name string) map[string]string {
	return map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
}

func registerNode(ctx context.Context, client kubernetes.Interface, name string, port int32) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: nodeLabels(name)}}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	created.Status = nodeStatus(port)
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

// every runs fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			fn()
		}
	}
}

func heartbeat(ctx context.Context, client kubernetes.Interface, name string) {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		node.Status = nodeStatus(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	}
	if err != nil {
		log.Printf("heartbeat: %v", err)
	}
}
