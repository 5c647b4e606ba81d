package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const fakeImageID = "fake-node://not-run"

// restoreWaitName is the init container Velero prepends to pods whose volumes it restores.
const restoreWaitName = "restore-wait"

type podRunner struct {
	client    kubernetes.Interface
	nodeName  string
	labels    map[string]string
	podsDir   string
	sandboxes string
	velero    *veleroRuntime

	mu sync.Mutex
	// statusCache: the status digest last written per pod, so a resync writes only changes.
	statusCache map[types.UID]string
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
		r.velero.stop(pod.UID)
		// The kubelet confirms a deletion once the containers are gone.
		zero := int64(0)
		err = r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil
		}
		r.forget(pod.UID)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return
	default:
		err = r.sync(ctx, pod)
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

// volumeDir is where a kubelet keeps a pod's emptyDir volume ("" for other kinds, which this node
// does not lay out).
func (r *podRunner) volumeDir(pod *corev1.Pod, name string) string {
	for _, volume := range pod.Spec.Volumes {
		if volume.Name == name && volume.EmptyDir != nil {
			return filepath.Join(r.podsDir, string(pod.UID), "volumes", "kubernetes.io~empty-dir", name)
		}
	}
	return ""
}

// ensureVolumeDirs: a kubelet makes <pods>/<uid>/volumes for every pod it runs (node-agent checks
// that each running pod of its node has its folder), and a folder per emptyDir volume.
// mountEnv tells an exec'd command where the container's emptyDir volumes are, since it runs on the
// host and not in the container's filesystem: VOLUME_<name, '-' as '_'>=<folder> for each one it mounts.
func (r *podRunner) mountEnv(ctx context.Context, namespace, name, container string) []string {
	pod, err := r.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		log.Printf("exec in %s/%s: %v", namespace, name, err)
		return nil
	}
	var env []string
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, mount := range c.VolumeMounts {
			if dir := r.volumeDir(pod, mount.Name); dir != "" {
				env = append(env, "VOLUME_"+strings.ReplaceAll(mount.Name, "-", "_")+"="+dir)
			}
		}
	}
	return env
}

func (r *podRunner) ensureVolumeDirs(pod *corev1.Pod) error {
	if err := os.MkdirAll(filepath.Join(r.podsDir, string(pod.UID), "volumes"), 0o750); err != nil {
		return err
	}
	for _, volume := range pod.Spec.Volumes {
		if dir := r.volumeDir(pod, volume.Name); dir != "" {
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreWaitDone is velero-restore-helper's test: every volume the container mounts holds
// .velero/<its first argument>. When it holds, the markers are removed, as the helper does.
func (r *podRunner) restoreWaitDone(pod *corev1.Pod, container corev1.Container) bool {
	if len(container.Args) == 0 {
		return false
	}
	var markers []string
	for _, mount := range container.VolumeMounts {
		dir := r.volumeDir(pod, mount.Name)
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ".velero", container.Args[0])); err != nil {
			return false
		}
		markers = append(markers, filepath.Join(dir, ".velero"))
	}
	for _, marker := range markers {
		if err := os.RemoveAll(marker); err != nil {
			log.Printf("restore-wait of %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}
	log.Printf("restore-wait of %s/%s: all %d volumes restored", pod.Namespace, pod.Name, len(markers))
	return true
}

func terminatedBefore(pod *corev1.Pod, name string) bool {
	for _, status := range pod.Status.InitContainerStatuses {
		if status.Name == name && status.State.Terminated != nil {
			return true
		}
	}
	return false
}

// sync moves a pod that this node does not run as a process through its init containers to Running.
func (r *podRunner) sync(ctx context.Context, pod *corev1.Pod) error {
	if err := r.ensureVolumeDirs(pod); err != nil {
		return err
	}
	if r.velero.runs(pod) {
		return r.velero.start(ctx, r, pod)
	}
	now := metav1.Now()
	status := pod.Status.DeepCopy()
	status.HostIP, status.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
	status.PodIP, status.PodIPs = "127.0.0.1", []corev1.PodIP{{IP: "127.0.0.1"}}
	if status.StartTime == nil {
		status.StartTime = &now
	}
	initialized := true
	status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		state := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", Message: "fake-node does not run containers", StartedAt: now, FinishedAt: now,
		}}
		switch {
		case !initialized:
			state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
		case c.Name == restoreWaitName && !terminatedBefore(pod, c.Name) && !r.restoreWaitDone(pod, c):
			state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
			initialized = false
		}
		status.InitContainerStatuses = append(status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: fakeImageID, Ready: state.Terminated != nil, State: state,
		})
	}
	status.ContainerStatuses = nil
	started := initialized
	for _, c := range pod.Spec.Containers {
		state := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
		if initialized {
			state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: fakeImageID, Ready: initialized, Started: &started,
			ContainerID: fmt.Sprintf("fake-node://%s/%s", pod.UID, c.Name), State: state,
		})
	}
	status.Phase = corev1.PodPending
	if initialized {
		status.Phase = corev1.PodRunning
	}
	conditionStatus := func(ok bool) corev1.ConditionStatus {
		if ok {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: conditionStatus(initialized), LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: conditionStatus(initialized), LastTransitionTime: now},
		{Type: corev1.PodReady, Status: conditionStatus(initialized), LastTransitionTime: now},
	}
	return r.writeStatus(ctx, pod, status)
}

// digest names what a status says (phase and each container's state), not when.
func digest(status *corev1.PodStatus) string {
	parts := []string{string(status.Phase)}
	for _, list := range [][]corev1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses} {
		for _, c := range list {
			state := "waiting"
			if c.State.Running != nil {
				state = "running"
			} else if c.State.Terminated != nil {
				state = fmt.Sprintf("terminated:%d", c.State.Terminated.ExitCode)
			}
			parts = append(parts, c.Name+"="+state)
		}
	}
	return strings.Join(parts, ",")
}

func (r *podRunner) writeStatus(ctx context.Context, pod *corev1.Pod, status *corev1.PodStatus) error {
	d := digest(status)
	r.mu.Lock()
	unchanged := r.statusCache[pod.UID] == d && digest(&pod.Status) == d
	r.mu.Unlock()
	if unchanged {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	if _, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return err
	}
	r.mu.Lock()
	r.statusCache[pod.UID] = d
	r.mu.Unlock()
	log.Printf("%s/%s: %s", pod.Namespace, pod.Name, d)
	return nil
}

func (r *podRunner) forget(uid types.UID) {
	r.mu.Lock()
	delete(r.statusCache, uid)
	r.mu.Unlock()
}
