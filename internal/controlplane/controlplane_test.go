package controlplane

import (
	"crypto/x509"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPKIIsCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	first, err := newPKI(dir, netip.MustParseAddr("10.43.0.1"), servingNames{})
	require.NoError(t, err)
	second, err := newPKI(dir, netip.MustParseAddr("10.43.0.1"), servingNames{})
	require.NoError(t, err)
	assert.Equal(t, first.ca.certPEM, second.ca.certPEM, "a restart must keep the CA its clients trust")
	assert.Equal(t, first.admin.certPEM, second.admin.certPEM)

	serving, err := loadKeyPair(dir, "serving-kube-apiserver")
	require.NoError(t, err)
	require.NoError(t, serving.cert.CheckSignatureFrom(first.ca.cert))
	assert.Contains(t, serving.cert.DNSNames, "kubernetes.default.svc.cluster.local")
	assert.Contains(t, ipStrings(serving.cert), "127.0.0.1")
	assert.Contains(t, ipStrings(serving.cert), "10.43.0.1", "pods reach the API server through the kubernetes Service")
	assert.Equal(t, []string{"system:masters"}, first.admin.cert.Subject.Organization)
	assert.Equal(t, "system:kube-controller-manager", first.users["controller-manager"].cert.Subject.CommonName)

	info, err := os.Stat(filepath.Join(dir, "ca.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "private keys are readable by their owner only")
}

func TestCertificatesOfAnotherCAAreReissued(t *testing.T) {
	dir := t.TempDir()
	_, err := newPKI(dir, netip.MustParseAddr("10.43.0.1"), servingNames{})
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "ca.crt")))
	require.NoError(t, os.Remove(filepath.Join(dir, "ca.key")))
	p, err := newPKI(dir, netip.MustParseAddr("10.43.0.1"), servingNames{})
	require.NoError(t, err)
	assert.NoError(t, p.admin.cert.CheckSignatureFrom(p.ca.cert))
}

func TestFirstServiceIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.43.0.0/16":  "10.43.0.1",
		"10.43.7.9/16":  "10.43.0.1",
		"fd00:43::/112": "fd00:43::1",
	} {
		got, err := firstServiceIP(cidr)
		require.NoError(t, err, cidr)
		assert.Equal(t, want, got.String(), cidr)
	}
	_, err := firstServiceIP("10.43.0.0")
	assert.ErrorContains(t, err, "service CIDR")
}

// The Go lookup and hack/build-tools.sh must agree on the cache key, or tests would not find
// the binaries the script built.
func TestToolsKeyMatchesTheBuildScript(t *testing.T) {
	tools, err := findToolsModule(".")
	require.NoError(t, err)
	key, err := toolsKey(tools)
	require.NoError(t, err)
	cmd := exec.Command("bash", "-c", "cat go.mod go.sum | sha256sum | cut -c1-16")
	cmd.Dir = tools
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, strings.TrimSpace(string(out)), key)
	script, err := os.ReadFile(filepath.Join(tools, "..", "..", "hack", "build-tools.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(script), `key=$(cat "$tools/go.mod" "$tools/go.sum" | sha256sum | cut -c1-16)`)
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := freePorts(6)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		assert.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
}

func ipStrings(c *x509.Certificate) []string {
	var s []string
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	return s
}
