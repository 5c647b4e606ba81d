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
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	streaming "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
)

// serveKubelet answers the kubelet endpoints the apiserver proxies to: exec
// (/exec/{namespace}/{pod}[/{uid}]/{container}?command=…) and the logs of the processes this node runs
// (/containerLogs/{namespace}/{pod}/{container}).
func serveKubelet(address, root string, runner *podRunner) (*http.Server, error) {
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
		executor := &localExecutor{dir: filepath.Join(root, namespace, pod, container), namespace: namespace, env: runner.mountEnv(req.Context(), namespace, pod, container)}
		streaming.ServeExec(w, req, executor, pod, uid, container, command, options, 5*time.Minute, 30*time.Second, remotecommandconsts.SupportedStreamingProtocols)
	})
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, req *http.Request) {
		parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/containerLogs/"), "/")
		if len(parts) != 3 {
			http.Error(w, "expected /containerLogs/{namespace}/{pod}/{container}", http.StatusNotFound)
			return
		}
		file := runner.velero.logFile(parts[0], parts[1], parts[2])
		if file == "" {
			http.Error(w, "fake-node keeps logs only of the processes it runs", http.StatusNotFound)
			return
		}
		http.ServeFile(w, req, file)
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
	env       []string
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
	process.Env = append(process.Env, e.env...)
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
