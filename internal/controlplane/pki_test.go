package controlplane

import (
	"crypto/x509"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFrontProxyCertificates: kube-apiserver's front-proxy client certificate chains to a CA
// of its own, not to the cluster CA, names FrontProxyUser, and both survive a restart.
func TestFrontProxyCertificates(t *testing.T) {
	dir := t.TempDir()
	clusterCA, err := loadOrCreateCA(dir)
	require.NoError(t, err)
	first, err := newFrontProxy(dir)
	require.NoError(t, err)
	second, err := newFrontProxy(dir)
	require.NoError(t, err)
	assert.Equal(t, first.ca.certPEM, second.ca.certPEM, "a restart keeps the front-proxy CA")

	client, err := loadKeyPair(dir, frontProxyClientFile)
	require.NoError(t, err)
	assert.Equal(t, FrontProxyUser, client.cert.Subject.CommonName)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, client.cert.ExtKeyUsage)
	assert.NoError(t, client.cert.CheckSignatureFrom(first.ca.cert))

	assert.NotEqual(t, clusterCA.certPEM, first.ca.certPEM)
	clusterRoots := x509.NewCertPool()
	clusterRoots.AddCert(clusterCA.cert)
	_, err = client.cert.Verify(x509.VerifyOptions{Roots: clusterRoots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.Error(t, err, "the cluster CA's clients cannot pass for the front proxy, nor the front proxy for them")
	clusterAgain, err := loadOrCreateCA(dir)
	require.NoError(t, err)
	assert.Equal(t, clusterCA.certPEM, clusterAgain.certPEM, "the cluster CA is untouched")
}

// TestAdminConfigAsksForNoGzip: the in-process clients of the API server on this machine ask
// for uncompressed responses, as the control-plane components do (kubernetes#80919).
func TestAdminConfigAsksForNoGzip(t *testing.T) {
	p, err := newPKI(t.TempDir(), netip.MustParseAddr("10.43.0.1"), servingNames{})
	require.NoError(t, err)
	cfg := p.restConfig("https://127.0.0.1:6443", p.admin)
	assert.True(t, cfg.DisableCompression)
}
