package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// LVP's fixed names (kots-and-lvp.md 4.3): Velero's Deployment and node-agent DaemonSet (restic before Velero 1.10),
// the sidecar container, and the signing Secret with its data key.
const (
	deploymentName = "velero"
	daemonSetName  = "node-agent"
	legacyDSName   = "restic"
	sidecarName    = "local-volume-provider"
	signingSecret  = "lvp-signingsecret"
	signingDataKey = "SigningKey"
	// LVP's default sidecar image is replicated/local-volume-provider:<version>; the stand-in has none of its own.
	defaultFileserverImage = "replicated/local-volume-provider:stand-in"
)

func clientAndNamespace() (*kubernetes.Clientset, string, error) {
	config, err := rest.InClusterConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, "", err
	}
	namespace := os.Getenv("VELERO_NAMESPACE")
	if namespace == "" {
		namespace = "velero"
	}
	return client, namespace, nil
}

func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// pluginConfig is LVP's optional ConfigMap, found by label replicated.com/<type>=ObjectStore (more than one is an error).
func pluginConfig(ctx context.Context, client *kubernetes.Clientset, namespace, volumeType string) (map[string]string, error) {
	selector := fmt.Sprintf("replicated.com/%s=ObjectStore", volumeType)
	list, err := client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	if len(list.Items) > 1 {
		return nil, fmt.Errorf("found more than one ConfigMap matching label selector %q", selector)
	}
	if len(list.Items) == 0 {
		return map[string]string{}, nil
	}
	return list.Items[0].Data, nil
}

func bucketVolume(volumeType, bucket string, config map[string]string) (corev1.Volume, error) {
	volume := corev1.Volume{Name: bucket}
	switch volumeType {
	case "hostpath":
		directory := corev1.HostPathDirectory
		volume.HostPath = &corev1.HostPathVolumeSource{Path: config["path"], Type: &directory}
	case "nfs":
		volume.NFS = &corev1.NFSVolumeSource{Server: config["server"], Path: config["path"]}
	default:
		// LVP creates a ReadWriteMany claim named after the bucket; the tests do not need it.
		return volume, fmt.Errorf("the LVP stand-in does not support volume type %q", volumeType)
	}
	return volume, nil
}

// upsert replaces the item with the same key, or appends it.
func upsert[T any](items []T, item T, key func(T) string) []T {
	for i := range items {
		if key(items[i]) == key(item) {
			items[i] = item
			return items
		}
	}
	return append(items, item)
}

func setVolume(volumes []corev1.Volume, volume corev1.Volume) []corev1.Volume {
	return upsert(volumes, volume, func(v corev1.Volume) string { return v.Name })
}

func setMount(mounts []corev1.VolumeMount, mount corev1.VolumeMount) []corev1.VolumeMount {
	return upsert(mounts, mount, func(m corev1.VolumeMount) string { return m.Name })
}

// ensureResources mounts the bucket's volume at <root>/<bucket> in node-agent's first container and in the velero
// container (with POD_IP, which signed URLs name), and adds the file-server sidecar with the same mount. Unlike LVP,
// it writes only when something changed, so an unchanged Init never touches the pods.
func ensureResources(log logrus.FieldLogger, volumeType, root string, config map[string]string) error {
	client, namespace, err := clientAndNamespace()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout()
	defer cancel()
	settings, err := pluginConfig(ctx, client, namespace, volumeType)
	if err != nil {
		return err
	}
	bucket := config["bucket"]
	volume, err := bucketVolume(volumeType, bucket, config)
	if err != nil {
		return err
	}
	mount := corev1.VolumeMount{Name: bucket, MountPath: filepath.Join(root, bucket)}

	agents, err := client.AppsV1().DaemonSets(namespace).Get(ctx, daemonSetName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		agents, err = client.AppsV1().DaemonSets(namespace).Get(ctx, legacyDSName, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		log.Info("no node-agent daemonset")
	case err != nil:
		return err
	default:
		before := agents.Spec.Template.Spec.DeepCopy()
		pod := &agents.Spec.Template.Spec
		pod.Volumes = setVolume(pod.Volumes, volume)
		pod.Containers[0].VolumeMounts = setMount(pod.Containers[0].VolumeMounts, mount)
		if !reflect.DeepEqual(before, pod) {
			if _, err := client.AppsV1().DaemonSets(namespace).Update(ctx, agents, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("unable to update node-agent daemonset: %w", err)
			}
			log.Infof("mounted %s on daemonset %s", bucket, agents.Name)
		}
	}

	deployment, err := client.AppsV1().Deployments(namespace).Get(ctx, deploymentName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("velero deployment not found")
	}
	if err != nil {
		return fmt.Errorf("could not get Velero deployment: %w", err)
	}
	before := deployment.Spec.Template.Spec.DeepCopy()
	if err := declareOnDeployment(&deployment.Spec.Template.Spec, volume, mount, root, namespace, settings); err != nil {
		return err
	}
	if !reflect.DeepEqual(before, &deployment.Spec.Template.Spec) {
		if _, err := client.AppsV1().Deployments(namespace).Update(ctx, deployment, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("unable to update velero deployment: %w", err)
		}
		log.Infof("mounted %s on deployment velero with the file-server sidecar: the deployment rolls", bucket)
	}
	return nil
}

func declareOnDeployment(pod *corev1.PodSpec, volume corev1.Volume, mount corev1.VolumeMount, root, namespace string, settings map[string]string) error {
	pod.Volumes = setVolume(pod.Volumes, volume)
	velero := -1
	sidecar := -1
	for i := range pod.Containers {
		switch pod.Containers[i].Name {
		case deploymentName:
			velero = i
		case sidecarName:
			sidecar = i
		}
	}
	if velero < 0 {
		return fmt.Errorf("velero container not found")
	}
	container := &pod.Containers[velero]
	container.VolumeMounts = setMount(container.VolumeMounts, mount)
	hasPodIP := false
	for _, env := range container.Env {
		hasPodIP = hasPodIP || env.Name == "POD_IP"
	}
	if !hasPodIP {
		container.Env = append(container.Env, corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}})
	}
	if sidecar >= 0 {
		pod.Containers[sidecar].VolumeMounts = setMount(pod.Containers[sidecar].VolumeMounts, mount)
		return nil
	}
	image := settings["fileserverImage"]
	if image == "" {
		image = defaultFileserverImage
	}
	// What LVP's plugin gives its sidecar: the image, the command, MOUNT_POINT and VELERO_NAMESPACE, the mount.
	pod.Containers = append(pod.Containers, corev1.Container{
		Name:         sidecarName,
		Image:        image,
		Command:      []string{"/local-volume-fileserver"},
		Env:          []corev1.EnvVar{{Name: "MOUNT_POINT", Value: root}, {Name: "VELERO_NAMESPACE", Value: namespace}},
		VolumeMounts: []corev1.VolumeMount{mount},
	})
	return nil
}

// signingKey reads Secret lvp-signingsecret, creating it with 32 bytes from the CSPRNG when absent (LVP: 16 bytes
// from math/rand). A concurrent creator wins: its key is read back.
func signingKey(log logrus.FieldLogger) ([]byte, error) {
	client, namespace, err := clientAndNamespace()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout()
	defer cancel()
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, signingSecret, metav1.GetOptions{})
	if err == nil {
		return secret.Data[signingDataKey], nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	created := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: signingSecret, Namespace: namespace}, Data: map[string][]byte{signingDataKey: key}}
	if _, err := client.CoreV1().Secrets(namespace).Create(ctx, created, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return signingKey(log)
		}
		return nil, err
	}
	log.Info("created the URL signing secret")
	return key, nil
}
