package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
)

// TestServerNetworkFlags starts a server with K3s's flags of the API server, its own node and
// the admin kubeconfig, and checks each took effect; a restart with another --tls-san reissues
// the serving certificate from the same CA.
func TestServerNetworkFlags(t *testing.T) {
	c := newCluster(t, "netflags", "192.0.2.70")
	out := filepath.Join(t.TempDir(), "rancher", "k3s.yaml")
	common := []string{"--disable=traefik,coredns", "-o", out, "--service-cidr=10.43.0.0/16,fd00:43::/112",
		"--service-node-port-range=31000-31999",
		"--kube-controller-manager-arg=node-cidr-mask-size=26",
		// v=1 makes the controller manager log its flags.
		"--kube-controller-manager-arg=terminated-pod-gc-threshold=50", "--kube-controller-manager-arg=v=1",
		"--node-label=tier=edge", "--node-taint=dedicated=lb:NoSchedule",
		"--node-internal-dns=netflags.internal", "--node-external-dns=netflags.example.test"}
	srv := c.start(append(common, "--write-kubeconfig-mode=0640", "--tls-san=k3s.example.test,203.0.113.70")...)

	// --write-kubeconfig and its mode: the admin kubeconfig, on loopback, works.
	info, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())
	written, err := clientcmd.LoadFromFile(out)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:"+strconv.Itoa(c.port), written.Clusters[written.Contexts[written.CurrentContext].Cluster].Server)
	byOutput := &cluster{t: t, binDir: c.binDir, kubeconfig: out}
	assert.Contains(t, byOutput.kubectl("get", "nodes", "-o", "name"), "node/netflags")

	// --service-node-port-range reaches kube-apiserver.
	_, err = c.try("create", "service", "nodeport", "outside", "--tcp=80", "--node-port=30080")
	require.Error(t, err, "a NodePort outside --service-node-port-range is refused")
	assert.Contains(t, err.Error(), "31000-31999")
	c.kubectl("create", "service", "nodeport", "inside", "--tcp=80", "--node-port=31080")

	// A dual-stack --service-cidr reaches kube-apiserver whole.
	c.kubectlIn(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dual"},
		"spec": {"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}}`, "create", "-f", "-")
	clusterIPs := strings.Fields(c.value(`{.spec.clusterIPs[*]}`, "service", "dual"))
	require.Len(t, clusterIPs, 2)
	assert.True(t, strings.HasPrefix(clusterIPs[0], "10.43.") && strings.HasPrefix(clusterIPs[1], "fd00:43::"), "%v", clusterIPs)

	// --kube-controller-manager-arg: the mask sizes the own node's pod CIDR, the rest reaches
	// the controller manager.
	c.eventually("the own node gets a /26 pod CIDR", func() bool {
		return strings.HasSuffix(c.value("{.spec.podCIDR}", "node", "netflags"), "/26")
	})
	cmLog, err := os.ReadFile(filepath.Join(c.dataDir, "server", "logs", "kube-controller-manager.log"))
	require.NoError(t, err)
	assert.Contains(t, string(cmLog), `FLAG: --terminated-pod-gc-threshold="50"`)

	// --node-label, --node-taint and the DNS names on the server's own (kwok) node.
	assert.Equal(t, "edge", c.value("{.metadata.labels.tier}", "node", "netflags"))
	assert.Contains(t, c.value("{.spec.taints}", "node", "netflags"), `"key":"dedicated","value":"lb"`)
	c.eventually("the stub publishes the node's DNS names", func() bool {
		return c.value(`{.status.addresses[?(@.type=="InternalDNS")].address}`, "node", "netflags") == "netflags.internal" &&
			c.value(`{.status.addresses[?(@.type=="ExternalDNS")].address}`, "node", "netflags") == "netflags.example.test"
	})

	// --tls-san: the serving certificate carries the extra names.
	first := servingCertificate(t, c.port)
	assert.Contains(t, first.DNSNames, "k3s.example.test")
	assert.Contains(t, ipStrings(first.IPAddresses), "203.0.113.70")
	srv.stop(t)

	// A restart with other SANs reissues the certificate from the same CA: the kubeconfig
	// written before still works.
	srv = c.start(append(common, "--tls-san=other.example.test")...)
	second := servingCertificate(t, c.port)
	assert.Contains(t, second.DNSNames, "other.example.test")
	assert.NotContains(t, second.DNSNames, "k3s.example.test", "a SAN no longer given is dropped")
	assert.Equal(t, first.AuthorityKeyId, second.AuthorityKeyId)
	info, err = os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "K3s's default mode")
	assert.Contains(t, byOutput.kubectl("get", "nodes", "-o", "name"), "node/netflags")
	srv.stop(t)
}

// servingCertificate is the certificate kube-apiserver serves on 127.0.0.1:port.
func servingCertificate(t *testing.T, port int) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the certificate is read
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
