package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Where LVP mounts each bucket's volume in Velero's pods ($VOLUME_ROOT overrides it), and the folders its Init makes.
const defaultRoot = "/var/velero-local-volume-provider"

var veleroFolders = []string{"backups", "restores", "restic", "metadata", "plugins"}

type objectStore struct {
	log        logrus.FieldLogger
	volumeType string
	root       string
	config     map[string]string
}

// Init checks the location's config as LVP does, declares the bucket's volume and the file-server sidecar on Velero's
// Deployment and node-agent (LVP's self-patching: the Deployment rolls when they change), and makes Velero's folders
// once the volume is mounted.
func (o *objectStore) Init(config map[string]string) error {
	o.config = config
	o.root = os.Getenv("VOLUME_ROOT")
	if o.root == "" {
		o.root = defaultRoot
	}
	switch o.volumeType {
	case "hostpath":
		if _, ok := config["path"]; !ok {
			return errors.New("hostpath config missing path")
		}
	case "nfs":
		if _, ok := config["path"]; !ok {
			return errors.New("nfs config missing path")
		}
		if _, ok := config["server"]; !ok {
			return errors.New("nfs config missing server address")
		}
	}
	if err := ensureResources(o.log, o.volumeType, o.root, config); err != nil {
		return err
	}
	return o.ensureFolders(config["bucket"], config["prefix"])
}

func (o *objectStore) ensureFolders(bucket, prefix string) error {
	base := filepath.Join(o.root, bucket)
	if _, err := os.Stat(base); err != nil {
		// Not mounted yet: the rollout that mounts it restarts this pod, and the next Init makes the folders.
		o.log.Infof("%s is not mounted yet", base)
		return nil
	}
	for _, folder := range veleroFolders {
		if err := os.MkdirAll(filepath.Join(base, prefix, folder), 0o755); err != nil {
			return fmt.Errorf("could not create directory %s: %w", filepath.Join(base, prefix, folder), err)
		}
	}
	return nil
}

func (o *objectStore) path(bucket, key string) string {
	return filepath.Join(o.root, bucket, filepath.FromSlash(key))
}

// PutObject writes the final path directly, as LVP does (no temp file): Velero writes each key once.
func (o *objectStore) PutObject(bucket, key string, body io.Reader) error {
	target := o.path(bucket, key)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	file, err := os.Create(target)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, body); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func (o *objectStore) ObjectExists(bucket, key string) (bool, error) {
	_, err := os.Stat(o.path(bucket, key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (o *objectStore) GetObject(bucket, key string) (io.ReadCloser, error) {
	return os.Open(o.path(bucket, key))
}

// ListCommonPrefixes returns the folders under prefix as full prefixes ending in the delimiter, as the interface
// asks (LVP returns bare names; Velero trims either).
func (o *objectStore) ListCommonPrefixes(bucket, prefix, delimiter string) ([]string, error) {
	entries, err := os.ReadDir(o.path(bucket, prefix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var prefixes []string
	for _, entry := range entries {
		if entry.IsDir() && entry.Name() != "lost+found" {
			prefixes = append(prefixes, prefix+entry.Name()+delimiter)
		}
	}
	return prefixes, nil
}

// ListObjects lists every file under prefix, recursively as S3 does (LVP lists direct children only).
func (o *objectStore) ListObjects(bucket, prefix string) ([]string, error) {
	base := filepath.Join(o.root, bucket)
	var keys []string
	err := filepath.WalkDir(o.path(bucket, prefix), func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if entry.Type().IsRegular() {
			rel, _ := filepath.Rel(base, path)
			if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
				keys = append(keys, key)
			}
		}
		return nil
	})
	return keys, err
}

// DeleteObject removes the file, then the folders it leaves empty up to Velero's top-level ones (backups/<name>/).
func (o *objectStore) DeleteObject(bucket, key string) error {
	target := o.path(bucket, key)
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	top := filepath.Join(o.root, bucket, o.config["prefix"])
	for dir := filepath.Dir(target); strings.HasPrefix(dir, top+string(filepath.Separator)) && filepath.Dir(dir) != top; dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

func (o *objectStore) CreateSignedURL(bucket, key string, ttl time.Duration) (string, error) {
	signingKey, err := signingKey(o.log)
	if err != nil {
		return "", err
	}
	return signURL(signingKey, os.Getenv("POD_IP"), bucket, key, time.Now().Add(ttl))
}
