package nodejoin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCert is a certificate with its key, for building chains in tests.
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// certTweak changes a certificate template before it is signed.
type certTweak func(*x509.Certificate)

// newTestCA returns a self-signed CA.
func newTestCA(t *testing.T, tweaks ...certTweak) *testCert {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "test-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return issue(t, nil, tmpl, tweaks...)
}

// newServingCert returns a server certificate for 127.0.0.1 and localhost signed by ca.
func newServingCert(t *testing.T, ca *testCert, tweaks ...certTweak) *testCert {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	return issue(t, ca, tmpl, tweaks...)
}

// newClientCert returns a client certificate for user signed by ca.
func newClientCert(t *testing.T, ca *testCert, user string, tweaks ...certTweak) *testCert {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return issue(t, ca, tmpl, tweaks...)
}

// issue signs tmpl with parent, or self-signs it when parent is nil. Validity defaults to an
// hour ago until a year from now.
func issue(t *testing.T, parent *testCert, tmpl *x509.Certificate, tweaks ...certTweak) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	for _, tw := range tweaks {
		tw(tmpl)
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCert{cert: cert, key: key, pem: certPEM(der)}
}

// keyPEM encodes the certificate's key as PKCS #8 PEM.
func (c *testCert) keyPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func validity(notBefore, notAfter time.Time) certTweak {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}
