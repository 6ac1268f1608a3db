package nodejoin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
)

// Files Join writes in its directory, with K3s's agent file names where K3s has one.
const (
	// ServerCAFile is the cluster CA certificate the server proved it holds.
	ServerCAFile = "server-ca.crt"
	// KubeletBootstrapKubeconfigFile is the kubelet's --bootstrap-kubeconfig: the bootstrap
	// token, with which the kubelet requests its own client certificate.
	KubeletBootstrapKubeconfigFile = "kubelet-bootstrap.kubeconfig"
)

// userAgent identifies Join's requests in the API server's logs.
const userAgent = "k3snet-nodejoin"

// Credentials are what Join obtained for an agent. The kubeconfigs are file paths.
type Credentials struct {
	// CACertPEM is the cluster CA certificate, as the server presented it.
	CACertPEM []byte
	// ServerURL is the API server's URL the kubeconfigs point at.
	ServerURL string
	// KubeletBootstrapKubeconfig is for the kubelet's --bootstrap-kubeconfig.
	KubeletBootstrapKubeconfig string
	// KubeProxyKubeconfig authenticates as system:kube-proxy, for kube-proxy's --kubeconfig.
	KubeProxyKubeconfig string
	// ControllerKubeconfig authenticates as system:k3s-controller, for the agent's node-local
	// controllers (the NetworkPolicy controller, the node's routes).
	ControllerKubeconfig string
	// Config holds the cluster settings the server publishes for agents.
	Config AgentConfig
}

// Join joins this node to the cluster at serverURL with tok, keeping its files in dir (created
// if needed), as a K3s agent started with --server and --token does:
//
//  1. It checks that the server holds the CA tok names (see fetchServerCA) before anything
//     carries the token, fails with ErrCAMismatch otherwise, and writes dir/server-ca.crt.
//  2. It writes dir/kubelet-bootstrap.kubeconfig (the server, the CA, the bootstrap token).
//  3. It reads the AgentConfig the server published, with the token.
//  4. For kube-proxy and the node-local controllers it keeps dir/client-kube-proxy.{crt,key}
//     and dir/client-k3s-controller.{crt,key} when they are still good (see reusableCert),
//     else requests new ones through CSRs and waits for them until ctx ends; it writes
//     dir/kubeproxy.kubeconfig and dir/k3scontroller.kubeconfig.
//
// Join retries while the server is not ready for it (see untilServerReady), and the CSRs
// wait for the server's Approver and kube-controller-manager's signer: give ctx a deadline.
// Join is idempotent: a second call with valid files requests nothing.
func Join(ctx context.Context, serverURL string, tok Token, dir string) (*Credentials, error) {
	logger := klog.FromContext(ctx).WithValues("server", serverURL, "tokenID", tok.ID)
	ctx = klog.NewContext(ctx, logger)
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}

	caPEM, err := fetchServerCA(ctx, serverURL, tok.CAHash)
	if err != nil {
		return nil, fmt.Errorf("joining %s: %w", serverURL, err)
	}
	ca, err := parseSingleCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("joining %s: the server's CA: %w", serverURL, err)
	}
	logger.V(2).Info("The server holds the token's CA", "ca", ca.Subject.CommonName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}
	caFile := filepath.Join(dir, ServerCAFile)
	if err := writeFileAtomic(caFile, caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}

	creds := &Credentials{CACertPEM: caPEM, ServerURL: serverURL}
	creds.KubeletBootstrapKubeconfig = filepath.Join(dir, KubeletBootstrapKubeconfigFile)
	if err := writeKubeconfig(creds.KubeletBootstrapKubeconfig, serverURL, caFile, &clientcmdapi.AuthInfo{Token: tok.bearer()}); err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}
	// The token's client is built from the file the kubelet will read, so a join that
	// succeeds has proved the file works.
	client, err := clientFromKubeconfig(creds.KubeletBootstrapKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}

	var cm *corev1.ConfigMap
	if err := untilServerReady(ctx, "reading the agent config", func(ctx context.Context) (err error) {
		cm, err = client.CoreV1().ConfigMaps(AgentConfigNamespace).Get(ctx, AgentConfigName, metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("joining %s: reading the agent config ConfigMap %s/%s with the bootstrap token: %w",
			serverURL, AgentConfigNamespace, AgentConfigName, err)
	}
	if creds.Config, err = agentConfigFrom(cm); err != nil {
		return nil, fmt.Errorf("joining %s: %w", serverURL, err)
	}

	for _, c := range []struct {
		id   clientIdentity
		dest *string
	}{
		{kubeProxyIdentity, &creds.KubeProxyKubeconfig},
		{controllerIdentity, &creds.ControllerKubeconfig},
	} {
		certFile, keyFile, err := ensureClientCert(ctx, client, ca, dir, c.id)
		if err != nil {
			return nil, fmt.Errorf("joining %s: %w", serverURL, err)
		}
		path := filepath.Join(dir, c.id.kubeconfig)
		if err := writeKubeconfig(path, serverURL, caFile, &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}); err != nil {
			return nil, fmt.Errorf("joining: %w", err)
		}
		*c.dest = path
	}
	logger.Info("Joined the cluster")
	return creds, nil
}

// retryInterval is how often Join repeats a request the server may not be ready for.
const retryInterval = 2 * time.Second

// untilServerReady calls fn until it succeeds, fails in a way waiting cannot fix, or ctx ends.
// A server that has just written the token's Secret and bindings answers 401 or 403 until its
// authenticator's and authorizer's caches have them, and one still starting refuses
// connections or answers 5xx; a K3s agent keeps retrying then too.
func untilServerReady(ctx context.Context, what string, fn func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, retryInterval, true, func(ctx context.Context) (bool, error) {
		last = fn(ctx)
		switch {
		case last == nil:
			return true, nil
		case serverNotReady(last):
			klog.FromContext(ctx).Info("The server is not ready for this node yet; retrying", "step", what, "err", last)
			return false, nil
		default:
			return false, last
		}
	})
	if err != nil && last != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (gave up: %w)", last, context.Cause(ctx))
	}
	return err
}

// serverNotReady reports whether err may go away by itself.
func serverNotReady(err error) bool {
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}

// writeKubeconfig writes a kubeconfig for server, trusting the CA in caFile, with user's
// credentials, readable by its owner only. Files are referenced by path, as in K3s's agent
// kubeconfigs, so a renewed certificate needs no new kubeconfig.
func writeKubeconfig(path, server, caFile string, user *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile}
	cfg.AuthInfos["user"] = user
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encoding kubeconfig %s: %w", path, err)
	}
	return writeFileAtomic(path, data, 0o600)
}

func clientFromKubeconfig(path string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	cfg.UserAgent = userAgent
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client from kubeconfig %s: %w", path, err)
	}
	return client, nil
}
