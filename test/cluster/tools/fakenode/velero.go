package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// veleroRuntime runs the pods of Velero's image (node-agent and the data-path pods it creates) with
// the real velero binary, one process per pod.
type veleroRuntime struct {
	binary     string
	kubeconfig string
	// unable says why this machine cannot run Velero's pods ("" when it can); they are then Failed with it.
	unable string

	mu        sync.Mutex
	processes map[types.UID]*veleroProcess
	logs      map[string]string // "<namespace>/<pod>/<container>" → its output file
}

type veleroProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func newVeleroRuntime(binary, kubeconfig string) *veleroRuntime {
	v := &veleroRuntime{binary: binary, kubeconfig: kubeconfig, processes: map[types.UID]*veleroProcess{}, logs: map[string]string{}}
	if binary != "" {
		if err := prepareHost(); err != nil {
			v.unable = "fake-node cannot run Velero's pods here: " + err.Error()
			log.Print(v.unable)
		}
	}
	return v
}

// runs: a single container of velero/velero running /velero (not velero-restore-helper).
func (v *veleroRuntime) runs(pod *corev1.Pod) bool {
	if v.binary == "" || len(pod.Spec.Containers) != 1 {
		return false
	}
	c := pod.Spec.Containers[0]
	return strings.HasPrefix(c.Image, "velero/velero:") && len(c.Command) > 0 && c.Command[0] == "/velero"
}

func (v *veleroRuntime) logFile(namespace, pod, container string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.logs[namespace+"/"+pod+"/"+container]
}

// mountPlan binds each hostPath/emptyDir mount where the pod mounts it when that mount point exists
// here; otherwise it rewrites the path where the arguments name it (a data-path pod's --volume-path).
func mountPlan(r *podRunner, pod *corev1.Pod, c corev1.Container, args []string) (binds [][2]string, rewritten []string) {
	rewritten = append([]string(nil), args...)
	for _, mount := range c.VolumeMounts {
		source := ""
		for _, volume := range pod.Spec.Volumes {
			if volume.Name != mount.Name {
				continue
			}
			switch {
			case volume.HostPath != nil:
				source = volume.HostPath.Path
			case volume.EmptyDir != nil:
				source = r.volumeDir(pod, volume.Name)
			}
		}
		if source == "" {
			continue
		}
		if info, err := os.Stat(mount.MountPath); err == nil && info.IsDir() {
			binds = append(binds, [2]string{source, mount.MountPath})
			continue
		}
		for i, arg := range rewritten {
			if arg == mount.MountPath {
				rewritten[i] = source
			} else if strings.HasSuffix(arg, "="+mount.MountPath) {
				rewritten[i] = strings.TrimSuffix(arg, mount.MountPath) + source
			}
		}
	}
	return binds, rewritten
}

func resolveEnv(pod *corev1.Pod, c corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		value := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				log.Printf("%s/%s: env %s: only fieldRef is resolved here, left unset", pod.Namespace, pod.Name, e.Name)
				continue
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				value = pod.Name
			case "metadata.namespace":
				value = pod.Namespace
			case "metadata.uid":
				value = string(pod.UID)
			case "spec.nodeName":
				value = pod.Spec.NodeName
			case "spec.serviceAccountName":
				value = pod.Spec.ServiceAccountName
			case "status.podIP", "status.hostIP":
				value = "127.0.0.1"
			default:
				log.Printf("%s/%s: env %s: fieldRef %s not resolved", pod.Namespace, pod.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
				continue
			}
		}
		env = append(env, e.Name+"="+value)
	}
	return env
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (v *veleroRuntime) start(ctx context.Context, r *podRunner, pod *corev1.Pod) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, started := v.processes[pod.UID]; started {
		return nil
	}
	c := pod.Spec.Containers[0]
	if v.unable != "" {
		return r.writeStatus(ctx, pod, terminatedStatus(pod, 126, v.unable))
	}
	sandbox := filepath.Join(r.sandboxes, string(pod.UID))
	if err := os.MkdirAll(sandbox, 0o700); err != nil {
		return err
	}
	termination := filepath.Join(sandbox, "termination-log")
	if err := os.WriteFile(termination, nil, 0o600); err != nil {
		return err
	}
	binds, args := mountPlan(r, pod, c, append(append([]string(nil), c.Command[1:]...), c.Args...))
	binds = append(binds, [2]string{termination, "/dev/termination-log"})
	script := "set -e\n"
	for _, bind := range binds {
		script += fmt.Sprintf("mount --bind %s %s\n", shellQuote(bind[0]), shellQuote(bind[1]))
	}
	script += `exec "$@"`
	output := filepath.Join(sandbox, c.Name+".log")
	file, err := os.Create(output)
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", v.binary}, args...)...)
	cmd.Dir = sandbox
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + sandbox, "KUBECONFIG=" + v.kubeconfig}, resolveEnv(pod, c)...)
	cmd.Stdout, cmd.Stderr = file, file
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		file.Close()
		return r.writeStatus(ctx, pod, terminatedStatus(pod, 127, err.Error()))
	}
	process := &veleroProcess{cmd: cmd, done: make(chan struct{})}
	v.processes[pod.UID] = process
	v.logs[pod.Namespace+"/"+pod.Name+"/"+c.Name] = output
	log.Printf("started %s/%s: velero %s (binds %v)", pod.Namespace, pod.Name, strings.Join(args, " "), binds)
	go func() {
		err := cmd.Wait()
		file.Close()
		close(process.done)
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
			if code < 0 {
				code = 137 // killed by a signal
			}
		} else if err != nil {
			code = 128
		}
		message, _ := os.ReadFile(termination)
		log.Printf("%s/%s exited with %d", pod.Namespace, pod.Name, code)
		v.finished(r, pod.Namespace, pod.Name, pod.UID, code, string(message))
	}()
	return r.writeStatus(ctx, pod, runningStatus(pod))
}

// finished records the exit in the pod's status, as the kubelet would (a few tries: the pod may be
// changing under us, or gone).
func (v *veleroRuntime) finished(r *podRunner, namespace, name string, uid types.UID, code int, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for attempt := 0; attempt < 10; attempt++ {
		pod, err := r.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && pod.UID != uid) {
			return
		}
		if err == nil {
			err = r.writeStatus(ctx, pod, terminatedStatus(pod, code, message))
			if err == nil {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Printf("%s/%s: could not record its exit", namespace, name)
}

func runningStatus(pod *corev1.Pod) *corev1.PodStatus {
	now := metav1.Now()
	started := true
	c := pod.Spec.Containers[0]
	return &corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "127.0.0.1", PodIP: "127.0.0.1", StartTime: &now,
		HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}}, PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, ImageID: "fake-node://velero", Ready: true, Started: &started,
			ContainerID: fmt.Sprintf("fake-node://%s/%s", pod.UID, c.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
}

func terminatedStatus(pod *corev1.Pod, code int, message string) *corev1.PodStatus {
	status := runningStatus(pod)
	now := metav1.Now()
	if pod.Status.StartTime != nil {
		status.StartTime = pod.Status.StartTime
	}
	status.Phase, status.Conditions = corev1.PodSucceeded, status.Conditions[:2]
	reason := "Completed"
	if code != 0 {
		status.Phase, reason = corev1.PodFailed, "Error"
	}
	started := false
	status.ContainerStatuses[0].Ready, status.ContainerStatuses[0].Started = false, &started
	status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: message, StartedAt: *status.StartTime, FinishedAt: now,
	}}
	return status
}

// stop ends a pod's process: SIGTERM to its process group, SIGKILL after 5 s.
func (v *veleroRuntime) stop(uid types.UID) {
	v.mu.Lock()
	process := v.processes[uid]
	v.mu.Unlock()
	if process == nil {
		return
	}
	_ = syscall.Kill(-process.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-process.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-process.cmd.Process.Pid, syscall.SIGKILL)
		<-process.done
	}
}

func (v *veleroRuntime) stopAll() {
	v.mu.Lock()
	uids := make([]types.UID, 0, len(v.processes))
	for uid := range v.processes {
		uids = append(uids, uid)
	}
	v.mu.Unlock()
	for _, uid := range uids {
		v.stop(uid)
	}
}

// prepareHost creates the mount points Velero's pods need on this machine: /host_pods (node-agent's
// view of the kubelet's pods folder) and /dev/termination-log. Both stay empty; every process gets
// its own bind mounts over them in a private mount namespace.
func prepareHost() error {
	if os.Geteuid() != 0 {
		return errors.New("it runs them in mount namespaces, which needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return fmt.Errorf("unshare (util-linux): %w", err)
	}
	if err := os.MkdirAll("/host_pods", 0o755); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/termination-log"); os.IsNotExist(err) {
		return os.WriteFile("/dev/termination-log", nil, 0o644)
	}
	return nil
}
