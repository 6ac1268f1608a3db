package nodejoin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrCAMismatch means the server's TLS chain holds no CA certificate with the token's hash
// that vouches for the server: it is not the cluster the token belongs to, or something sits
// in between. Nothing was sent to it.
var ErrCAMismatch = errors.New("the server's CA does not match the token's hash")

// fetchServerCA connects to the server at serverURL and returns the CA certificate (PEM) of
// its TLS chain whose hash is caHash, once that CA verifies the server's certificate for the
// URL's host. It completes a TLS handshake and sends nothing over it, so the token never
// reaches a server that fails the check. kube-apiserver serves its certificate followed by
// the CA for this (its --tls-cert-file holds the chain).
func fetchServerCA(ctx context.Context, serverURL, caHash string) ([]byte, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("server URL %q: want https://<host>[:<port>]", serverURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	var ca *x509.Certificate
	var verifyErr error
	dialer := &tls.Dialer{Config: &tls.Config{
		// The certificates are checked by VerifyPeerCertificate against the token's CA
		// hash instead of the system roots, which know nothing of the cluster CA.
		InsecureSkipVerify: true, //nolint:gosec // verified against the pinned CA below
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			ca, verifyErr = verifyPinnedChain(rawCerts, caHash, host)
			return verifyErr
		},
	}}
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		if verifyErr != nil {
			return nil, fmt.Errorf("checking the server %s: %w", serverURL, verifyErr)
		}
		return nil, fmt.Errorf("connecting to the server %s: %w", serverURL, err)
	}
	if err := conn.Close(); err != nil {
		return nil, fmt.Errorf("connecting to the server %s: %w", serverURL, err)
	}
	if ca == nil {
		// A resumed session skips verification; this dialer has no session cache, so every
		// handshake is a full one.
		return nil, fmt.Errorf("checking the server %s: %w", serverURL, ErrCAMismatch)
	}
	return certPEM(ca.Raw), nil
}

// verifyPinnedChain finds, in the chain a server presented (leaf first), the CA certificate
// whose hash is caHash, and checks that it verifies the leaf for host (a DNS name or an IP
// address) with the other certificates as intermediates. It returns that CA.
func verifyPinnedChain(rawCerts [][]byte, caHash, host string) (*x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return nil, fmt.Errorf("%w: the server presented no certificate", ErrCAMismatch)
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d of the server's chain: %w", i, err)
		}
		certs[i] = c
	}
	var ca *x509.Certificate
	for _, c := range certs {
		if subtle.ConstantTimeCompare([]byte(certHash(c.Raw)), []byte(caHash)) == 1 {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: none of the %d certificates it presented has hash %s", ErrCAMismatch, len(certs), caHash)
	}
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return nil, fmt.Errorf("%w: the certificate with the token's hash is not a CA", ErrCAMismatch)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		if c != ca {
			intermediates.AddCert(c)
		}
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("%w: the CA with the token's hash does not vouch for the server's certificate for %s: %w", ErrCAMismatch, host, err)
	}
	return ca, nil
}
