package nodejoin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/nodejoin"
	"github.com/k3snet/k3snet/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

// joinTimeout bounds a Join: two CSRs, each approved and signed within a second or two.
const joinTimeout = 2 * time.Minute

var agentConfig = nodejoin.AgentConfig{
	ClusterCIDRs: []string{"10.42.0.0/16"}, ServiceCIDRs: []string{"10.43.0.0/16"},
	ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local", DisableServiceLB: true,
}

// server holds the node token of the package's cluster, set up once: the objects
// EnsureServerObjects writes are cluster-wide, so every test shares one token.
var server struct {
	mu  sync.Mutex
	tok *nodejoin.Token
}

// testContext is t.Context with logs to t at V(2).
func testContext(t *testing.T) context.Context {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2)))
	return klog.NewContext(t.Context(), logger)
}

// serverToken returns the cluster's node token, creating it and the server objects on first use.
func serverToken(t *testing.T, c *testcluster.Cluster) nodejoin.Token {
	t.Helper()
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.tok == nil {
		tok, err := nodejoin.LoadOrCreateToken(filepath.Join(t.TempDir(), "node-token"), c.Config.CAData)
		require.NoError(t, err)
		require.NoError(t, nodejoin.EnsureServerObjects(testContext(t), c.Client, tok, agentConfig))
		server.tok = &tok
	}
	return *server.tok
}

// startApprover runs the Approver until the test ends, as a user bound to
// ApproverClusterRole only.
func startApprover(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	cfg := c.ImpersonateRole(t, testcluster.UniqueName("k3snet-approver"), nodejoin.ApproverClusterRole())
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	a, err := nodejoin.NewApprover(client, nodejoin.ApproverOptions{})
	require.NoError(t, err)
	factory := informers.NewSharedInformerFactory(client, 0)
	t.Cleanup(factory.Shutdown)
	require.NoError(t, a.Start(testContext(t), factory))
}

// join runs Join into a new directory with a deadline.
func join(t *testing.T, c *testcluster.Cluster, tok nodejoin.Token, dir string) *nodejoin.Credentials {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), joinTimeout)
	defer cancel()
	creds, err := nodejoin.Join(ctx, c.Config.Host, tok, dir)
	require.NoError(t, err)
	return creds
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	return clientForConfig(t, cfg)
}

func clientForConfig(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return client
}

// whoami asks the API server who client is.
func whoami(t *testing.T, client kubernetes.Interface) authenticationv1.UserInfo {
	t.Helper()
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r.Status.UserInfo
}

// can lists with client and reports whether the API server allowed it; any other error fails.
func can(t *testing.T, what string, list func(context.Context, metav1.ListOptions) error) bool {
	t.Helper()
	err := list(t.Context(), metav1.ListOptions{Limit: 1})
	if apierrors.IsForbidden(err) {
		return false
	}
	require.NoError(t, err, what)
	return true
}

func TestEnsureServerObjectsWritesNothingTheSecondTime(t *testing.T) {
	c := cluster.Get(t)
	tok := serverToken(t, c)
	counter := &testcluster.WriteCounter{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(counter.Wrap)
	client := clientForConfig(t, cfg)

	require.NoError(t, nodejoin.EnsureServerObjects(testContext(t), client, tok, agentConfig))
	assert.Empty(t, counter.Since(0), "an unchanged second call wrote")

	changed := agentConfig
	changed.ClusterDomain = "example.internal"
	require.NoError(t, nodejoin.EnsureServerObjects(testContext(t), client, tok, changed))
	assert.Equal(t, []string{"PATCH /api/v1/namespaces/kube-system/configmaps/k3snet-agent-config"}, counter.Since(0),
		"a changed agent config writes the ConfigMap only")
	n := counter.Count()
	require.NoError(t, nodejoin.EnsureServerObjects(testContext(t), client, tok, agentConfig))
	assert.Len(t, counter.Since(n), 1)

	secret, err := c.Client.CoreV1().Secrets("kube-system").Get(t.Context(), "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.SecretTypeBootstrapToken, secret.Type)
	assert.True(t, slices.ContainsFunc(secret.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == nodejoin.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply
	}), "managed fields %v", secret.ManagedFields)
}

func TestANewTokenRevokesTheOldOne(t *testing.T) {
	c := cluster.Get(t)
	ctx := testContext(t)
	old := serverToken(t, c)
	tok, err := nodejoin.NewToken(c.Config.CAData)
	require.NoError(t, err)
	// Whatever happens, the package's token is back afterwards.
	t.Cleanup(func() {
		require.NoError(t, nodejoin.EnsureServerObjects(context.Background(), c.Client, old, agentConfig))
	})

	require.NoError(t, nodejoin.EnsureServerObjects(ctx, c.Client, tok, agentConfig))
	_, err = c.Client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+old.ID, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the old token's Secret is still there: %v", err)
	_, err = c.Client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	assert.NoError(t, err)
}

func TestJoinGetsWorkingIdentities(t *testing.T) {
	c := cluster.Get(t)
	tok := serverToken(t, c)
	startApprover(t, c)
	dir := t.TempDir()

	creds := join(t, c, tok, dir)
	assert.Equal(t, agentConfig, creds.Config)
	assert.Equal(t, c.Config.CAData, creds.CACertPEM)
	assert.Equal(t, c.Config.Host, creds.ServerURL)
	for _, f := range []string{"client-kube-proxy.key", "client-k3s-controller.key", "kubelet-bootstrap.kubeconfig"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

	t.Run("kube-proxy reads Services and EndpointSlices and nothing secret", func(t *testing.T) {
		client := clientFor(t, creds.KubeProxyKubeconfig)
		assert.Equal(t, "system:kube-proxy", whoami(t, client).Username)
		assert.True(t, can(t, "services", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.CoreV1().Services("").List(ctx, o)
			return err
		}))
		assert.True(t, can(t, "endpointslices", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.DiscoveryV1().EndpointSlices("").List(ctx, o)
			return err
		}))
		assert.False(t, can(t, "secrets", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.CoreV1().Secrets("").List(ctx, o)
			return err
		}))
	})

	t.Run("the controller identity reads what the node's controllers watch and nothing secret", func(t *testing.T) {
		client := clientFor(t, creds.ControllerKubeconfig)
		info := whoami(t, client)
		assert.Equal(t, "system:k3s-controller", info.Username)
		assert.NotContains(t, info.Groups, "system:masters")
		for what, list := range map[string]func(context.Context, metav1.ListOptions) error{
			"pods": func(ctx context.Context, o metav1.ListOptions) error {
				_, err := client.CoreV1().Pods("").List(ctx, o)
				return err
			},
			"namespaces": func(ctx context.Context, o metav1.ListOptions) error {
				_, err := client.CoreV1().Namespaces().List(ctx, o)
				return err
			},
			"networkpolicies": func(ctx context.Context, o metav1.ListOptions) error {
				_, err := client.NetworkingV1().NetworkPolicies("").List(ctx, o)
				return err
			},
			"nodes": func(ctx context.Context, o metav1.ListOptions) error {
				_, err := client.CoreV1().Nodes().List(ctx, o)
				return err
			},
		} {
			assert.True(t, can(t, what, list), "system:k3s-controller cannot list %s", what)
		}
		assert.False(t, can(t, "secrets", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.CoreV1().Secrets("").List(ctx, o)
			return err
		}))
		assert.False(t, can(t, "services", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.CoreV1().Services("").List(ctx, o)
			return err
		}), "the controller identity reads Services, which no node-local controller needs")
	})

	t.Run("the bootstrap token reads the agent config and nothing secret", func(t *testing.T) {
		client := clientFor(t, creds.KubeletBootstrapKubeconfig)
		info := whoami(t, client)
		assert.Equal(t, "system:bootstrap:"+tok.ID, info.Username)
		assert.Contains(t, info.Groups, "system:bootstrappers")
		_, err := client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), nodejoin.AgentConfigName, metav1.GetOptions{})
		assert.NoError(t, err)
		_, err = client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "extension-apiserver-authentication", metav1.GetOptions{})
		assert.True(t, apierrors.IsForbidden(err), "another ConfigMap: %v", err)
		assert.False(t, can(t, "secrets", func(ctx context.Context, o metav1.ListOptions) error {
			_, err := client.CoreV1().Secrets("kube-system").List(ctx, o)
			return err
		}))
	})

	t.Run("a second join reuses the certificates", func(t *testing.T) {
		before := readFiles(t, dir, "client-kube-proxy.crt", "client-k3s-controller.crt")
		csrsBefore := csrsBy(t, c, "system:bootstrap:"+tok.ID)
		again := join(t, c, tok, dir)
		assert.Equal(t, creds, again)
		assert.Equal(t, before, readFiles(t, dir, "client-kube-proxy.crt", "client-k3s-controller.crt"))
		assert.Equal(t, csrsBefore, csrsBy(t, c, "system:bootstrap:"+tok.ID), "a second join created CSRs")
	})
}

func readFiles(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		out[n] = string(b)
	}
	return out
}

// csrsBy returns the names of the CSRs user created.
func csrsBy(t *testing.T, c *testcluster.Cluster, user string) []string {
	t.Helper()
	list, err := c.Client.CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, r := range list.Items {
		if r.Spec.Username == user {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// requestCert creates, with client, a CSR of signer for tmpl with a new key, deleted when the
// test ends, and returns its name and the key.
func requestCert(t *testing.T, c *testcluster.Cluster, client kubernetes.Interface, signer string, tmpl *x509.CertificateRequest, usages ...certificatesv1.KeyUsage) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := certutil.MakeCSRFromTemplate(key, tmpl)
	require.NoError(t, err)
	r, err := client.CertificatesV1().CertificateSigningRequests().Create(t.Context(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: der, SignerName: signer, Usages: usages},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		err := c.Client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CSR %s: %v", r.Name, err)
		}
	})
	return r.Name, key
}

// waitIssued waits until the CSR is signed and returns the certificate and the CSR.
func waitIssued(t *testing.T, c *testcluster.Cluster, client kubernetes.Interface, name string) (*x509.Certificate, *certificatesv1.CertificateSigningRequest) {
	t.Helper()
	r, err := c.Client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), testcluster.WaitTimeout)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(ctx, client, name, r.UID)
	require.NoError(t, err, "CSR %s was not signed", name)
	certs, err := certutil.ParseCertsPEM(certPEM)
	require.NoError(t, err)
	r, err = c.Client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return certs[0], r
}

func approvalReason(r *certificatesv1.CertificateSigningRequest) string {
	for _, cond := range r.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved {
			return cond.Reason
		}
	}
	return ""
}

// TestKubeletTLSBootstrap does what a kubelet given the bootstrap kubeconfig does: it asks for
// its client certificate, then renews it with that certificate. kube-controller-manager
// approves and signs both, as the bindings EnsureServerObjects wrote allow.
func TestKubeletTLSBootstrap(t *testing.T) {
	c := cluster.Get(t)
	tok := serverToken(t, c)
	startApprover(t, c)
	creds := join(t, c, tok, t.TempDir())
	bootstrap := clientFor(t, creds.KubeletBootstrapKubeconfig)
	ca, err := certutil.ParseCertsPEM(creds.CACertPEM)
	require.NoError(t, err)

	node := testcluster.UniqueName("node")
	subject := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}}
	kubeletUsages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}

	name, key := requestCert(t, c, bootstrap, certificatesv1.KubeAPIServerClientKubeletSignerName, subject, kubeletUsages...)
	cert, r := waitIssued(t, c, bootstrap, name)
	assert.Equal(t, "AutoApproved", approvalReason(r), "not approved by kube-controller-manager's csrapproving controller")
	assert.Equal(t, "system:node:"+node, cert.Subject.CommonName)
	assert.Equal(t, []string{"system:nodes"}, cert.Subject.Organization)
	require.NoError(t, cert.CheckSignatureFrom(ca[0]))

	cfg := &rest.Config{Host: c.Config.Host, TLSClientConfig: rest.TLSClientConfig{
		CAData: creds.CACertPEM, CertData: certPEMOf(cert), KeyData: keyPEMOf(t, key),
	}}
	kubelet := clientForConfig(t, cfg)
	info := whoami(t, kubelet)
	assert.Equal(t, "system:node:"+node, info.Username)
	assert.Contains(t, info.Groups, "system:nodes")
	_, err = kubelet.CoreV1().ConfigMaps("kube-system").Get(t.Context(), nodejoin.AgentConfigName, metav1.GetOptions{})
	assert.NoError(t, err, "a joined node cannot read the agent config")

	renewal, _ := requestCert(t, c, kubelet, certificatesv1.KubeAPIServerClientKubeletSignerName, subject, kubeletUsages...)
	renewed, r := waitIssued(t, c, kubelet, renewal)
	assert.Equal(t, "AutoApproved", approvalReason(r))
	assert.Equal(t, "system:node:"+node, renewed.Subject.CommonName)
}

func certPEMOf(cert *x509.Certificate) []byte {
	b, _ := certutil.EncodeCertificates(cert)
	return b
}

func keyPEMOf(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// TestApproverApprovesOnlyNodeClientIdentities creates, with a bootstrap token (what a
// leaked token gives an attacker), requests the Approver must not approve, then one it must.
// The Approver has one worker and takes CSRs in the order they were created, so once the last
// is approved the others have been decided too.
func TestApproverApprovesOnlyNodeClientIdentities(t *testing.T) {
	c := cluster.Get(t)
	tok := serverToken(t, c)
	startApprover(t, c)
	creds := join(t, c, tok, t.TempDir())
	bootstrap := clientFor(t, creds.KubeletBootstrapKubeconfig)
	clientUsages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	signer := certificatesv1.KubeAPIServerClientSignerName

	// kube-apiserver itself refuses this signer for O=system:masters; kubeadm's admin group is
	// as powerful where it is bound.
	admin, _ := requestCert(t, c, bootstrap, signer,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"}}}, clientUsages...)
	nodeGroup, _ := requestCert(t, c, bootstrap, signer,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:kube-proxy", Organization: []string{"system:nodes"}}}, clientUsages...)
	sans, _ := requestCert(t, c, bootstrap, signer,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:k3s-controller"}, DNSNames: []string{"kubernetes"}}, clientUsages...)
	good, _ := requestCert(t, c, bootstrap, signer,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:kube-proxy"}}, clientUsages...)

	cert, r := waitIssued(t, c, bootstrap, good)
	assert.Equal(t, nodejoin.ReasonAutoApproved, approvalReason(r))
	assert.Equal(t, "system:kube-proxy", cert.Subject.CommonName)

	get := func(name string) *certificatesv1.CertificateSigningRequest {
		r, err := c.Client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		return r
	}
	assert.Empty(t, get(admin).Status.Conditions, "a CSR for another identity was decided")
	assert.Empty(t, get(admin).Status.Certificate)
	for name, reason := range map[string]string{nodeGroup: nodejoin.ReasonOrganizationNotAllowed, sans: nodejoin.ReasonSubjectAltNamesNotAllowed} {
		// A retried write (a conflict) could put a denial after the approval above.
		var r *certificatesv1.CertificateSigningRequest
		require.NoError(t, c.Poll(t.Context(), func(context.Context) (bool, error) {
			r = get(name)
			return len(r.Status.Conditions) > 0, nil
		}), "CSR %s was not decided", name)
		require.Len(t, r.Status.Conditions, 1, "CSR %s", name)
		assert.Equal(t, certificatesv1.CertificateDenied, r.Status.Conditions[0].Type, "CSR %s", name)
		assert.Equal(t, reason, r.Status.Conditions[0].Reason, "CSR %s", name)
		assert.Empty(t, r.Status.Certificate, "CSR %s", name)
		waitWarning(t, c, name, reason)
	}
}

// waitWarning polls for the Warning Event with reason on the CSR.
func waitWarning(t *testing.T, c *testcluster.Cluster, csrName, reason string) {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": "CertificateSigningRequest", "involvedObject.name": csrName, "reason": reason, "type": corev1.EventTypeWarning}
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
		return err == nil && len(list.Items) > 0, err
	})
	require.NoError(t, err, "no Warning Event %s on CSR %s", reason, csrName)
}

func TestJoinWithAnotherCAsHashFailsBeforeSendingTheToken(t *testing.T) {
	c := cluster.Get(t)
	tok := serverToken(t, c)
	sum := sha256.Sum256([]byte("another cluster's CA"))
	tok.CAHash = hex.EncodeToString(sum[:])
	dir := filepath.Join(t.TempDir(), "agent")

	_, err := nodejoin.Join(testContext(t), c.Config.Host, tok, dir)
	require.ErrorIs(t, err, nodejoin.ErrCAMismatch)
	assert.NotContains(t, err.Error(), tok.Secret)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "files were written")
}
