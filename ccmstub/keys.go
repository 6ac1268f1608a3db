package ccmstub

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultProgram is the program name K3s builds its node keys from. RKE2 uses "rke2".
const DefaultProgram = "k3s"

// Names that do not depend on the program name.
const (
	// UninitializedTaint is the taint key the kubelet puts on its Node when it runs with
	// --cloud-provider=external; the node is unschedulable until a cloud controller (this
	// stub) has filled in its addresses and removed the taint.
	UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"
	// ProvidedNodeIPAnnotation is where the kubelet records its --node-ip (a comma list). The
	// upstream cloud-node controller initializes a node only when each of these IPs is among
	// the addresses the provider returns; so does this stub.
	ProvidedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"
)

// Keys holds the annotation and label names and the providerID scheme that K3s derives from its
// program name. Build it once with NewKeys and pass it down; K3s computes them
// into package variables from version.Program, which stops two programs sharing a process.
//
// The legacy labels old agents wrote (single values, read when the annotation is missing) have
// the same keys as the annotations InternalIP, ExternalIP and Hostname.
type Keys struct {
	// Program is the name the keys were built from, "k3s" or "rke2".
	Program string
	// InternalIP is the annotation listing the node's internal IPs, comma-separated
	// (<program>.io/internal-ip); also a legacy label with one IP.
	InternalIP string
	// ExternalIP is the annotation listing the node's external IPs, comma-separated
	// (<program>.io/external-ip); also a legacy label with one IP.
	ExternalIP string
	// InternalDNS is the annotation listing the node's internal DNS names, comma-separated.
	InternalDNS string
	// ExternalDNS is the annotation listing the node's external DNS names, comma-separated.
	ExternalDNS string
	// Hostname is the annotation holding the node's hostname; also a legacy label.
	Hostname string
	// ProviderIDPrefix starts the providerID the stub gives a node: "<program>://".
	ProviderIDPrefix string
	// InstanceType is the instance type the stub reports for a node that has none: the
	// program name.
	InstanceType string
}

// NewKeys builds the keys for program; an empty program means DefaultProgram. Check the result
// with Validate when program comes from a user.
func NewKeys(program string) Keys {
	if program == "" {
		program = DefaultProgram
	}
	domain := program + ".io/"
	return Keys{
		Program:          program,
		InternalIP:       domain + "internal-ip",
		ExternalIP:       domain + "external-ip",
		InternalDNS:      domain + "internal-dns",
		ExternalDNS:      domain + "external-dns",
		Hostname:         domain + "hostname",
		ProviderIDPrefix: program + "://",
		InstanceType:     program,
	}
}

// Validate reports a program name that cannot start an annotation key and a URL scheme: it
// must be a DNS-1123 label.
func (k Keys) Validate() error {
	if errs := validation.IsDNS1123Label(k.Program); len(errs) > 0 {
		return fmt.Errorf("program %q: %w", k.Program, errors.New(strings.Join(errs, "; ")))
	}
	return nil
}

// annotations lists the five annotations the agent writes, in the order the addresses appear.
func (k Keys) annotations() []string {
	return []string{k.InternalIP, k.ExternalIP, k.InternalDNS, k.ExternalDNS, k.Hostname}
}

// legacyLabels lists the three single-value labels pre-annotation agents wrote.
func (k Keys) legacyLabels() []string {
	return []string{k.InternalIP, k.ExternalIP, k.Hostname}
}
