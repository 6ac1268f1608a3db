package nodejoin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/klog/v2"
)

// clientIdentity is a client certificate an agent gets through a CSR, with K3s's agent file
// names for it.
type clientIdentity struct {
	// user is the certificate's CN, the user kube-apiserver authenticates.
	user string
	// file is the base name of the .crt and .key files.
	file string
	// kubeconfig is the kubeconfig file's name.
	kubeconfig string
}

var (
	kubeProxyIdentity  = clientIdentity{user: KubeProxyUser, file: "client-kube-proxy", kubeconfig: "kubeproxy.kubeconfig"}
	controllerIdentity = clientIdentity{user: ControllerUser, file: "client-k3s-controller", kubeconfig: "k3scontroller.kubeconfig"}
)

// errRenew is wrapped by reusableCert's errors: the files are fine to replace.
var errRenew = errors.New("needs a new certificate")

// reusableCert says why the certificate and key in certPEM and keyPEM cannot be kept for user,
// or nil if they can: they must belong together, name user, be signed by ca and have more than
// a third of their lifetime left at now, which leaves time to renew them before they expire
// (the kubelet's certificate manager renews at 70-90% of the lifetime).
func reusableCert(certPEM, keyPEM []byte, ca *x509.Certificate, user string, now time.Time) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("%w: %w", errRenew, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%w: %w", errRenew, err)
	}
	if cert.Subject.CommonName != user {
		return fmt.Errorf("%w: it names %q, not %q", errRenew, cert.Subject.CommonName, user)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("%w: not signed by the cluster CA: %w", errRenew, err)
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%w: it is not valid before %s", errRenew, cert.NotBefore.Format(time.RFC3339))
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	if renewAt := cert.NotAfter.Add(-lifetime / 3); !now.Before(renewAt) {
		return fmt.Errorf("%w: it is valid until %s, less than a third of its lifetime", errRenew, cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// ensureClientCert makes dir/<id.file>.{crt,key} hold a usable certificate for id.user: the
// existing pair when reusableCert accepts it, else a new one requested through client.
func ensureClientCert(ctx context.Context, client kubernetes.Interface, ca *x509.Certificate, dir string, id clientIdentity) (certFile, keyFile string, err error) {
	logger := klog.FromContext(ctx).WithValues("user", id.user)
	certFile, keyFile = filepath.Join(dir, id.file+".crt"), filepath.Join(dir, id.file+".key")
	certPEM, errCert := os.ReadFile(certFile)
	keyPEM, errKey := os.ReadFile(keyFile)
	if errCert == nil && errKey == nil {
		why := reusableCert(certPEM, keyPEM, ca, id.user, time.Now())
		if why == nil {
			logger.V(2).Info("Reusing the client certificate", "file", certFile)
			return certFile, keyFile, nil
		}
		logger.Info("Requesting a new client certificate", "file", certFile, "why", why.Error())
	}
	certPEM, keyPEM, err = requestClientCert(ctx, client, ca, id.user)
	if err != nil {
		return "", "", err
	}
	// The key goes first: a crash between the two writes leaves a pair that does not match,
	// which the next join replaces.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	logger.Info("Wrote a new client certificate", "file", certFile)
	return certFile, keyFile, nil
}

// clientUsages are the usages asked of kube-apiserver-client certificates.
var clientUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth,
}

// requestClientCert generates a key, asks for a certificate for user through a CSR of signer
// kubernetes.io/kube-apiserver-client and waits until it is approved and signed or ctx ends.
// It returns the certificate and key, PEM-encoded, after checking that the certificate is the
// one asked for.
func requestClientCert(ctx context.Context, client kubernetes.Interface, ca *x509.Certificate, user string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key for %s: %w", user, err)
	}
	request, err := certutil.MakeCSR(key, &pkix.Name{CommonName: user}, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("making a certificate request for %s: %w", user, err)
	}
	var name string
	var uid types.UID
	if err := untilServerReady(ctx, "creating a CSR", func(ctx context.Context) (err error) {
		name, uid, err = csr.RequestCertificateWithContext(ctx, client, request, "", signerAPIServerClient, nil, clientUsages, key)
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("creating a CSR for %s: %w", user, err)
	}
	logger := klog.FromContext(ctx).WithValues("user", user, "csr", name)
	logger.V(2).Info("Created CSR; waiting for approval and signing")
	certPEM, err = csr.WaitForCertificate(ctx, client, name, uid)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("waiting for CSR %s (%s) to be approved and signed; is the server's CSR approver running? %w", name, user, context.Cause(ctx))
		}
		return nil, nil, fmt.Errorf("waiting for CSR %s (%s): %w", name, user, err)
	}
	if err := checkIssued(certPEM, key.Public(), ca, user); err != nil {
		return nil, nil, fmt.Errorf("CSR %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key for %s: %w", user, err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// checkIssued checks that the first certificate of certPEM is for pub and user and signed by ca.
func checkIssued(certPEM []byte, pub crypto.PublicKey, ca *x509.Certificate, user string) error {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return fmt.Errorf("parsing the issued certificate: %w", err)
	}
	cert := certs[0]
	if k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return errors.New("the issued certificate is not for the key the CSR carried")
	}
	if cert.Subject.CommonName != user {
		return fmt.Errorf("the issued certificate names %q, not %q", cert.Subject.CommonName, user)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("the issued certificate is not signed by the cluster CA: %w", err)
	}
	return nil
}
