// fake-node stands in for a scheduler and a kubelet on the test control plane, which has neither,
// so that real clients that need running pods (Velero's exec hooks, post-restore hooks) meet a
// node that behaves like one:
//   - it registers a Ready Node whose kubelet endpoint is this process on 127.0.0.1;
//   - it binds every unscheduled pod whose nodeSelector the Node satisfies, as a one-node scheduler
//     would (a pod that does not fit stays Pending);
//   - it reports pods on the Node as Running and Ready (init containers as Completed); images are
//     never pulled or run, which it says in each container's status;
//   - it answers the kubelet's exec endpoint with the SPDY/WebSocket protocols the apiserver proxies,
//     running the command as a local process in <root>/<namespace>/<pod>/<container>;
//   - it finishes the deletion of pods on the Node, as a kubelet does after their containers stop.
//
// Test harness only: it listens on 127.0.0.1, and every command it runs was written by the tests.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	streaming "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
)

const fakeImageID = "fake-node://not-run"

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the control plane")
	nodeName := flag.String("node-name", "fake-node", "name of the Node to register")
	listen := flag.String("listen", "127.0.0.1:10250", "kubelet endpoint (host:port); the host must be 127.0.0.1")
	root := flag.String("root", "", "folder under which exec commands run (<root>/<namespace>/<pod>/<container>)")
	flag.Parse()
	if *kubeconfig == "" || *root == "" {
		log.Fatal("--kubeconfig and --root are required")
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

	server, err := serveExec(*listen, *root)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	if err := registerNode(ctx, client, *nodeName, int32(port)); err != nil {
		log.Fatalf("registering node %s: %v", *nodeName, err)
	}
	go heartbeat(ctx, client, *nodeName)
	node := &podRunner{client: client, nodeName: *nodeName, labels: nodeLabels(*nodeName)}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { node.handle(ctx, obj) },
		UpdateFunc: func(_, obj any) { node.handle(ctx, obj) },
	}); err != nil {
		log.Fatalf("pod informer: %v", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	log.Printf("node %s ready, kubelet endpoint https://%s", *nodeName, *listen)
	<-ctx.Done()
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

// heartbeat refreshes the Ready condition, so nothing that reads its age takes the node for dead.
func heartbeat(ctx context.Context, client kubernetes.Interface, name string) {
	ticker := time.NewTicker(20 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			log.Printf("heartbeat: %v", err)
			continue
		}
		node.Status = nodeStatus(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			log.Printf("heartbeat: %v", err)
		}
	}
}

type podRunner struct {
	client   kubernetes.Interface
	nodeName string
	labels   map[string]string
}

// fits: the default scheduler's pods whose nodeSelector matches the Node's labels (affinity and
// taints are not modelled).
func (r *podRunner) fits(pod *corev1.Pod) bool {
	if pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName {
		return false
	}
	for key, value := range pod.Spec.NodeSelector {
		if r.labels[key] != value {
			return false
		}
	}
	return true
}

func (r *podRunner) handle(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	var err error
	switch {
	case pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil:
		if !r.fits(pod) {
			return
		}
		err = r.bind(ctx, pod)
	case pod.Spec.NodeName != r.nodeName:
		return
	case pod.DeletionTimestamp != nil:
		// The kubelet confirms a deletion once the containers are gone; ours never ran.
		zero := int64(0)
		err = r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil
		}
	case pod.Status.Phase != corev1.PodRunning:
		err = r.markRunning(ctx, pod)
	}
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		log.Printf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

func (r *podRunner) bind(ctx context.Context, pod *corev1.Pod) error {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.nodeName},
	}
	err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err == nil {
		log.Printf("bound %s/%s to %s", pod.Namespace, pod.Name, r.nodeName)
	}
	return err
}

func (r *podRunner) markRunning(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	status := pod.Status.DeepCopy()
	status.Phase = corev1.PodRunning
	status.HostIP = "127.0.0.1"
	status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	status.PodIP = "127.0.0.1"
	status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	status.StartTime = &now
	status.Conditions = nil
	for _, condition := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		status.Conditions = append(status.Conditions, corev1.PodCondition{Type: condition, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		status.InitContainerStatuses = append(status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: fakeImageID, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", Message: "fake-node does not run containers", StartedAt: now, FinishedAt: now,
			}},
		})
	}
	status.ContainerStatuses = nil
	started := true
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: fakeImageID, Ready: true, Started: &started,
			ContainerID: fmt.Sprintf("fake-node://%s/%s", pod.UID, c.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	_, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err == nil {
		log.Printf("running %s/%s (%d containers, %d init containers)", pod.Namespace, pod.Name, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
	}
	return err
}

// serveExec answers /exec/{namespace}/{pod}[/{uid}]/{container}?command=… as the kubelet does.
func serveExec(address, root string) (*http.Server, error) {
	certificate, err := selfSigned()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/", func(w http.ResponseWriter, req *http.Request) {
		parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/exec/"), "/")
		var namespace, pod, container string
		var uid types.UID
		switch len(parts) {
		case 3:
			namespace, pod, container = parts[0], parts[1], parts[2]
		case 4:
			namespace, pod, uid, container = parts[0], parts[1], types.UID(parts[2]), parts[3]
		default:
			http.Error(w, "expected /exec/{namespace}/{pod}[/{uid}]/{container}", http.StatusNotFound)
			return
		}
		options, err := streaming.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		command := req.URL.Query()["command"]
		if len(command) == 0 {
			http.Error(w, "no command", http.StatusBadRequest)
			return
		}
		executor := &localExecutor{dir: filepath.Join(root, namespace, pod, container), namespace: namespace}
		streaming.ServeExec(w, req, executor, pod, uid, container, command, options, 5*time.Minute, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12}}
	go func() {
		if err := server.ServeTLS(listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("exec server: %v", err)
		}
	}()
	return server, nil
}

type localExecutor struct {
	dir       string
	namespace string
}

func (e *localExecutor) ExecInContainer(ctx context.Context, name string, _ types.UID, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, _ <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if tty {
		return errors.New("fake-node: no TTY support")
	}
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	process := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	process.Dir = e.dir
	process.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + e.dir, "POD_NAMESPACE=" + e.namespace, "POD_NAME=" + name, "CONTAINER_NAME=" + container}
	process.Stdin, process.Stdout, process.Stderr = in, out, errOut
	log.Printf("exec in %s/%s[%s]: %q", e.namespace, name, container, cmd)
	err := process.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		// The exit code reaches the client as the kubelet reports it.
		return &exitCodeError{code: exitErr.ExitCode()}
	}
	return err
}

// exitCodeError satisfies the kubelet's ExitError contract (k8s.io/utils/exec), so the client sees
// "command terminated with non-zero exit code".
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string   { return fmt.Sprintf("command exited with %d", e.code) }
func (e *exitCodeError) String() string  { return e.Error() }
func (e *exitCodeError) Exited() bool    { return true }
func (e *exitCodeError) ExitStatus() int { return e.code }

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fake-node"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
