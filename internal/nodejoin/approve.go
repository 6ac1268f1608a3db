package nodejoin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// signerAPIServerClient is the built-in signer of client certificates kube-apiserver trusts
// (https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/#kubernetes-signers);
// kube-controller-manager signs its approved CSRs with the cluster CA.
const signerAPIServerClient = certificatesv1.KubeAPIServerClientSignerName

// Condition reasons the Approver writes. The denial reasons name the check that failed; the
// Warning Event on the CSR carries the same reason.
const (
	// ReasonAutoApproved is the reason of the Approved condition.
	ReasonAutoApproved = "K3snetAutoApproved"
	// ReasonRequesterNotAllowed: the CSR's creator is neither a bootstrap token nor a node.
	ReasonRequesterNotAllowed = "RequesterNotAllowed"
	// ReasonInvalidSignature: the request is not signed by the key it carries.
	ReasonInvalidSignature = "InvalidSignature"
	// ReasonOrganizationNotAllowed: the subject names an organization, which would be a group.
	ReasonOrganizationNotAllowed = "OrganizationNotAllowed"
	// ReasonSubjectAltNamesNotAllowed: the request carries DNS, IP, email or URI names.
	ReasonSubjectAltNamesNotAllowed = "SubjectAltNamesNotAllowed"
	// ReasonUsagesNotAllowed: a usage beyond a client certificate's, or no client auth.
	ReasonUsagesNotAllowed = "UsagesNotAllowed"
)

// approvableUsers are the identities agents ask certificates for: kube-proxy and the node-local
// controllers. A kubelet's own identity goes through kube-controller-manager's approver.
var approvableUsers = []string{KubeProxyUser, ControllerUser}

// requesterGroups are the groups whose members may ask for approvableUsers: joining agents
// (bootstrap tokens) and joined nodes (kubelet certificates).
var requesterGroups = []string{BootstrappersGroup, NodesGroup}

// allowedUsages are the usages of a client certificate; KeyEncipherment is what RSA keys
// use, and client-go's helpers ask for it with any key.
var allowedUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth,
}

// verdict is what the Approver does with a CSR.
type verdict int

const (
	// ignore leaves the CSR to whoever else handles it.
	ignore verdict = iota
	approve
	deny
)

func (v verdict) String() string {
	switch v {
	case approve:
		return "approve"
	case deny:
		return "deny"
	default:
		return "ignore"
	}
}

// decision is a verdict with the condition's reason and message.
type decision struct {
	verdict verdict
	reason  string
	message string
}

// decide says what to do with csr. It approves only a request, from a bootstrap token or a
// node, for exactly a client certificate of one of approvableUsers: that CN, no organization
// (which kube-apiserver would read as groups), no subject alternative names, client usages
// only. A request for one of those users that fails a check is denied, with the first failed
// check as reason. Anything else (another signer, another CN, a CSR already decided, a request
// that does not parse) is ignored: another approver, or an administrator, may own it.
func decide(csr *certificatesv1.CertificateSigningRequest) decision {
	if csr.Spec.SignerName != signerAPIServerClient {
		return decision{verdict: ignore, message: "another signer"}
	}
	if decided(csr) {
		return decision{verdict: ignore, message: "already decided"}
	}
	req, err := parseCertificateRequest(csr.Spec.Request)
	if err != nil {
		return decision{verdict: ignore, message: err.Error()}
	}
	cn := req.Subject.CommonName
	if !slices.Contains(approvableUsers, cn) {
		return decision{verdict: ignore, message: "another common name"}
	}

	var failed []decision
	check := func(ok bool, reason, format string, args ...any) {
		if !ok {
			failed = append(failed, decision{verdict: deny, reason: reason, message: fmt.Sprintf(format, args...)})
		}
	}
	check(slices.ContainsFunc(csr.Spec.Groups, func(g string) bool { return slices.Contains(requesterGroups, g) }),
		ReasonRequesterNotAllowed, "requested by %s, who is in none of the groups %v", csr.Spec.Username, requesterGroups)
	check(req.CheckSignature() == nil, ReasonInvalidSignature, "the request's signature does not verify with its public key")
	check(len(req.Subject.Organization) == 0, ReasonOrganizationNotAllowed,
		"the subject names organizations %q; a certificate for %s has none", req.Subject.Organization, cn)
	check(len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) == 0, ReasonSubjectAltNamesNotAllowed,
		"the request carries subject alternative names; a certificate for %s has none", cn)
	check(usagesAllowed(csr.Spec.Usages), ReasonUsagesNotAllowed,
		"usages %q; a certificate for %s has client auth and at most %q", csr.Spec.Usages, cn, allowedUsages)

	if len(failed) > 0 {
		d := failed[0]
		msgs := make([]string, len(failed))
		for i, f := range failed {
			msgs[i] = f.message
		}
		d.message = fmt.Sprintf("Denied a client certificate for %s: %s", cn, strings.Join(msgs, "; "))
		return d
	}
	return decision{verdict: approve, reason: ReasonAutoApproved,
		message: fmt.Sprintf("Auto-approved a client certificate for %s requested by %s", cn, csr.Spec.Username)}
}

// decided reports whether csr already carries a final condition.
func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	return slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return true
		}
		return false
	})
}

func usagesAllowed(usages []certificatesv1.KeyUsage) bool {
	for _, u := range usages {
		if !slices.Contains(allowedUsages, u) {
			return false
		}
	}
	return slices.Contains(usages, certificatesv1.UsageClientAuth)
}

// parseCertificateRequest decodes spec.request: one PEM CERTIFICATE REQUEST block.
func parseCertificateRequest(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("spec.request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing spec.request: %w", err)
	}
	return req, nil
}
