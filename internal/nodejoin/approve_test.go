package nodejoin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// csrSpec is what makeCSR builds a CSR from.
type csrSpec struct {
	request    x509.CertificateRequest
	signer     string
	usages     []certificatesv1.KeyUsage
	username   string
	groups     []string
	conditions []certificatesv1.CertificateSigningRequestCondition
	// mangle, if set, changes the DER request after signing.
	mangle func([]byte) []byte
	// rawRequest, if set, replaces spec.request.
	rawRequest []byte
}

type csrTweak func(*csrSpec)

// makeCSR builds what a joining agent sends for kube-proxy: CN system:kube-proxy, signer
// kube-apiserver-client, client usages, created with a bootstrap token.
func makeCSR(t *testing.T, tweaks ...csrTweak) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	s := csrSpec{
		request:  x509.CertificateRequest{Subject: pkix.Name{CommonName: KubeProxyUser}},
		signer:   signerAPIServerClient,
		usages:   clientUsages,
		username: "system:bootstrap:abcdef",
		groups:   []string{BootstrappersGroup, "system:authenticated"},
	}
	for _, tw := range tweaks {
		tw(&s)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &s.request, key)
	require.NoError(t, err)
	if s.mangle != nil {
		der = s.mangle(der)
	}
	request := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if s.rawRequest != nil {
		request = s.rawRequest
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-test", ResourceVersion: "1"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: s.signer, Usages: s.usages, Username: s.username, Groups: s.groups,
		},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: s.conditions},
	}
}

func commonName(cn string) csrTweak {
	return func(s *csrSpec) { s.request.Subject.CommonName = cn }
}

func organization(o ...string) csrTweak {
	return func(s *csrSpec) { s.request.Subject.Organization = o }
}

func signer(name string) csrTweak { return func(s *csrSpec) { s.signer = name } }

func usages(u ...certificatesv1.KeyUsage) csrTweak { return func(s *csrSpec) { s.usages = u } }

func requester(user string, groups ...string) csrTweak {
	return func(s *csrSpec) { s.username, s.groups = user, groups }
}

func condition(typ certificatesv1.RequestConditionType) csrTweak {
	return func(s *csrSpec) {
		s.conditions = append(s.conditions, certificatesv1.CertificateSigningRequestCondition{Type: typ, Status: corev1.ConditionTrue})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		csr        []csrTweak
		want       verdict
		wantReason string
	}{
		{name: "kube-proxy's request from a bootstrap token is approved",
			want: approve, wantReason: ReasonAutoApproved},
		{name: "the controller's request from a bootstrap token is approved",
			csr: []csrTweak{commonName(ControllerUser)}, want: approve, wantReason: ReasonAutoApproved},
		{name: "a joined node may renew kube-proxy's certificate",
			csr: []csrTweak{requester("system:node:n1", NodesGroup, "system:authenticated")}, want: approve, wantReason: ReasonAutoApproved},
		{name: "digital signature and client auth alone are enough",
			csr: []csrTweak{usages(certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)}, want: approve, wantReason: ReasonAutoApproved},

		{name: "another signer is someone else's",
			csr: []csrTweak{signer(certificatesv1.KubeAPIServerClientKubeletSignerName)}, want: ignore},
		{name: "an administrator's identity is not ours to judge",
			csr: []csrTweak{commonName("system:admin"), organization("system:masters")}, want: ignore},
		{name: "a node identity goes to kube-controller-manager's approver",
			csr: []csrTweak{commonName("system:node:n1"), organization(NodesGroup)}, want: ignore},
		{name: "an approved CSR is left alone",
			csr: []csrTweak{condition(certificatesv1.CertificateApproved)}, want: ignore},
		{name: "a denied CSR is left alone",
			csr: []csrTweak{organization("system:masters"), condition(certificatesv1.CertificateDenied)}, want: ignore},
		{name: "a failed CSR is left alone",
			csr: []csrTweak{condition(certificatesv1.CertificateFailed)}, want: ignore},
		{name: "a request that is not PEM names no user",
			csr: []csrTweak{func(s *csrSpec) { s.rawRequest = []byte("garbage") }}, want: ignore},

		{name: "kube-proxy in group system:masters is denied",
			csr: []csrTweak{organization("system:masters")}, want: deny, wantReason: ReasonOrganizationNotAllowed},
		{name: "a DNS name is denied",
			csr: []csrTweak{func(s *csrSpec) { s.request.DNSNames = []string{"kubernetes"} }}, want: deny, wantReason: ReasonSubjectAltNamesNotAllowed},
		{name: "an IP address is denied",
			csr: []csrTweak{func(s *csrSpec) { s.request.IPAddresses = []net.IP{net.IPv4(10, 0, 0, 1)} }}, want: deny, wantReason: ReasonSubjectAltNamesNotAllowed},
		{name: "an email address is denied",
			csr: []csrTweak{func(s *csrSpec) { s.request.EmailAddresses = []string{"a@example.com"} }}, want: deny, wantReason: ReasonSubjectAltNamesNotAllowed},
		{name: "a URI is denied",
			csr: []csrTweak{func(s *csrSpec) { s.request.URIs = []*url.URL{{Scheme: "spiffe", Host: "cluster.local"}} }}, want: deny, wantReason: ReasonSubjectAltNamesNotAllowed},
		{name: "server auth is denied",
			csr: []csrTweak{usages(certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth, certificatesv1.UsageServerAuth)}, want: deny, wantReason: ReasonUsagesNotAllowed},
		{name: "usages without client auth are denied",
			csr: []csrTweak{usages(certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment)}, want: deny, wantReason: ReasonUsagesNotAllowed},
		{name: "a CA certificate is denied",
			csr: []csrTweak{usages(certificatesv1.UsageClientAuth, certificatesv1.UsageCertSign)}, want: deny, wantReason: ReasonUsagesNotAllowed},
		{name: "a request from a service account is denied",
			csr: []csrTweak{requester("system:serviceaccount:default:x", "system:serviceaccounts", "system:authenticated")}, want: deny, wantReason: ReasonRequesterNotAllowed},
		{name: "a request whose signature does not verify is denied",
			csr: []csrTweak{func(s *csrSpec) {
				s.mangle = func(der []byte) []byte {
					der[len(der)-1] ^= 0xff
					return der
				}
			}}, want: deny, wantReason: ReasonInvalidSignature},
		{name: "the first failed check names the denial",
			csr:  []csrTweak{organization("system:masters"), usages(certificatesv1.UsageServerAuth)},
			want: deny, wantReason: ReasonOrganizationNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(makeCSR(t, tt.csr...))
			assert.Equal(t, tt.want, got.verdict, "message: %s", got.message)
			assert.Equal(t, tt.wantReason, got.reason)
		})
	}
}

func TestDecideMessageListsEveryFailedCheck(t *testing.T) {
	got := decide(makeCSR(t, organization("system:masters"), usages(certificatesv1.UsageServerAuth)))
	assert.Contains(t, got.message, "system:masters")
	assert.Contains(t, got.message, "server auth")
}

func TestDecideDoesNotChangeTheCSR(t *testing.T) {
	csr := makeCSR(t, organization("system:masters"))
	before := csr.DeepCopy()
	decide(csr)
	assert.Equal(t, before, csr)
}
