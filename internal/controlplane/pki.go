package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// certValidity is long because a k3slike data dir is meant to survive restarts for a while;
// test clusters live for minutes.
const certValidity = 10 * 365 * 24 * time.Hour

// keyPair is a certificate with its private key, as loaded from or written to disk.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// certRequest says what one certificate of the control plane is for.
type certRequest struct {
	file         string // base name in the tls dir, without extension
	commonName   string
	organization []string
	dnsNames     []string
	ips          []net.IP
	server       bool
	// exact reissues a certificate that carries names req no longer asks for, as K3s
	// regenerates its serving certificate when the SANs change.
	exact bool
}

// loadOrCreateCA reuses dir/ca.{crt,key} when both exist, so a restarted k3slike keeps
// its clients' trust, and creates them otherwise.
func loadOrCreateCA(dir string) (*keyPair, error) {
	return loadOrCreateNamedCA(dir, "ca", "k3snet-ca")
}

// loadOrCreateNamedCA is loadOrCreateCA for dir/<file>.{crt,key}, a CA named <name>@<time>.
func loadOrCreateNamedCA(dir, file, name string) (*keyPair, error) {
	if kp, err := loadKeyPair(dir, file); err == nil {
		return kp, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name + "@" + fmt.Sprint(now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	return writeKeyPair(dir, file, der, key)
}

// loadOrIssue reuses dir/<file>.{crt,key} when they exist, were signed by ca and still name
// what req asks for, and issues a new pair otherwise (a server given a new address gets a
// serving certificate valid for it).
func loadOrIssue(dir string, ca *keyPair, req certRequest) (*keyPair, error) {
	if kp, err := loadKeyPair(dir, req.file); err == nil && kp.cert.CheckSignatureFrom(ca.cert) == nil && covers(kp.cert, req) {
		return kp, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key for %s: %w", req.file, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.commonName, Organization: req.organization},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     req.dnsNames,
		IPAddresses:  req.ips,
	}
	if req.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", req.file, err)
	}
	return writeKeyPair(dir, req.file, der, key)
}

// covers reports whether cert carries every name and address req asks for.
func covers(cert *x509.Certificate, req certRequest) bool {
	for _, name := range req.dnsNames {
		if !slices.Contains(cert.DNSNames, name) {
			return false
		}
	}
	for _, ip := range req.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	if req.exact {
		for _, name := range cert.DNSNames {
			if !slices.Contains(req.dnsNames, name) {
				return false
			}
		}
		for _, ip := range cert.IPAddresses {
			if !slices.ContainsFunc(req.ips, ip.Equal) {
				return false
			}
		}
	}
	return cert.Subject.CommonName == req.commonName && slices.Equal(cert.Subject.Organization, req.organization)
}

// loadOrCreateSigningKey returns the paths of the service-account token signing key and its
// public half, creating them once.
func loadOrCreateSigningKey(dir string) (keyFile, pubFile string, err error) {
	keyFile, pubFile = filepath.Join(dir, "service.key"), filepath.Join(dir, "service.pub")
	_, errKey := os.Stat(keyFile)
	_, errPub := os.Stat(pubFile)
	if errKey == nil && errPub == nil {
		return keyFile, pubFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating service-account key: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encoding service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", fmt.Errorf("encoding service-account public key: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", keyFile, err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", pubFile, err)
	}
	return keyFile, pubFile, nil
}

func writeKeyPair(dir, file string, der []byte, key *ecdsa.PrivateKey) (*keyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new certificate %s: %w", file, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key %s: %w", file, err)
	}
	kp := &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if err := os.WriteFile(filepath.Join(dir, file+".crt"), kp.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("writing certificate %s: %w", file, err)
	}
	if err := os.WriteFile(filepath.Join(dir, file+".key"), kp.keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing key %s: %w", file, err)
	}
	return kp, nil
}

func loadKeyPair(dir, file string) (*keyPair, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, file+".crt"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, file+".key"))
	if err != nil {
		return nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("%s/%s: not PEM", dir, file)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s/%s.crt: %w", dir, file, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s/%s.key: %w", dir, file, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s/%s.key: not a signing key", dir, file)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("%s/%s.crt expired on %s: %w", dir, file, cert.NotAfter, os.ErrNotExist)
	}
	return &keyPair{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial: %w", err)
	}
	return serial, nil
}

// Front-proxy (request-header) authentication of kube-apiserver's aggregation layer: it proxies
// requests for aggregated APIs with a client certificate from a CA of its own, naming the user
// in these headers. The file and user names are K3s's (request-header-ca, system:auth-proxy).
const (
	frontProxyCAFile     = "request-header-ca"
	frontProxyClientFile = "client-auth-proxy"
	// FrontProxyUser is the common name of kube-apiserver's front-proxy client certificate,
	// the only name an aggregated API server should accept the headers from.
	FrontProxyUser = "system:auth-proxy"
	// FrontProxyUserHeader, FrontProxyGroupHeader and FrontProxyExtraHeaderPrefix carry the
	// user kube-apiserver authenticated to an aggregated API server.
	FrontProxyUserHeader        = "X-Remote-User"
	FrontProxyGroupHeader       = "X-Remote-Group"
	FrontProxyExtraHeaderPrefix = "X-Remote-Extra-"
)

// frontProxy is the front-proxy CA and kube-apiserver's client certificate from it.
type frontProxy struct {
	ca                        *keyPair
	caFile, certFile, keyFile string
}

// newFrontProxy reuses or creates the front-proxy CA and client certificate in dir. The CA is
// not the cluster CA: a client certificate of the cluster CA (any user's) must not be able to
// claim another user's identity through the headers.
func newFrontProxy(dir string) (*frontProxy, error) {
	ca, err := loadOrCreateNamedCA(dir, frontProxyCAFile, "k3snet-request-header-ca")
	if err != nil {
		return nil, err
	}
	if _, err := loadOrIssue(dir, ca, certRequest{file: frontProxyClientFile, commonName: FrontProxyUser}); err != nil {
		return nil, err
	}
	return &frontProxy{
		ca:       ca,
		caFile:   filepath.Join(dir, frontProxyCAFile+".crt"),
		certFile: filepath.Join(dir, frontProxyClientFile+".crt"),
		keyFile:  filepath.Join(dir, frontProxyClientFile+".key"),
	}, nil
}
