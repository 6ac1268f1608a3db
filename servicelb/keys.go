package servicelb

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultProgram is the program name K3s builds its ServiceLB keys from. RKE2 uses "rke2".
const DefaultProgram = "k3s"

// Names that do not depend on the program name.
const (
	// LoadBalancerCleanupFinalizer is the finalizer the upstream service controller puts on a
	// LoadBalancer Service before it provisions anything, and removes once cleanup is done.
	LoadBalancerCleanupFinalizer = "service.kubernetes.io/load-balancer-cleanup"
	// SourceRangesAnnotation lists the allowed client CIDRs, comma-separated, when
	// spec.loadBalancerSourceRanges is empty (upstream annotation).
	SourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"
	// DefaultImage is the klipper-lb image the LB pods run, before any system default registry.
	DefaultImage = "rancher/klipper-lb:v0.4.17"
	// ServiceAccountName is the ServiceAccount of the LB pods, in the LB namespace.
	ServiceAccountName = "svclb"
	// DefaultPriorityClassName is the LB pods' priority class unless the Service overrides it.
	DefaultPriorityClassName = "system-node-critical"
)

// Event reasons and messages, the ones K3s's service-lb-controller emits, so that
// `kubectl get events --field-selector reason=...` keeps working after a move from K3s.
const (
	// ReasonAppliedDaemonSet (Normal) follows a successful apply of a Service's DaemonSet.
	ReasonAppliedDaemonSet = "AppliedDaemonSet"
	// ReasonDeletedDaemonSet (Normal) follows the deletion of a Service's DaemonSet.
	ReasonDeletedDaemonSet = "DeletedDaemonSet"
	// ReasonUpdatedLoadBalancer (Normal) follows a status write with a non-empty ingress list,
	// whether its addresses or only their ipMode changed.
	ReasonUpdatedLoadBalancer = "UpdatedLoadBalancer"
	// ReasonUnAvailableLoadBalancer (Warning) follows a status write with an empty ingress list.
	ReasonUnAvailableLoadBalancer = "UnAvailableLoadBalancer"
	// ReasonSyncLoadBalancerFailed (Warning) reports a Service that cannot be rendered into a
	// DaemonSet; K3s surfaces the same failures through the upstream controller under this
	// reason.
	ReasonSyncLoadBalancerFailed = "SyncLoadBalancerFailed"

	messageAppliedDaemonSet        = "Applied LoadBalancer DaemonSet %s/%s"
	messageDeletedDaemonSet        = "Deleted LoadBalancer DaemonSet %s/%s"
	messageUpdatedLoadBalancer     = "Updated LoadBalancer with new IPs: %v -> %v"
	messageUpdatedIPMode           = "Updated LoadBalancer IPs %v with new ipMode: %s -> %s"
	messageUnAvailableLoadBalancer = "There are no available nodes for LoadBalancer"
)

// Keys holds the label, annotation and finalizer names that K3s derives from its program name
// (svccontroller.<program>.cattle.io/...). Build it once with NewKeys and pass it down; K3s keeps these in package variables
// computed from version.Program, which is what stops two programs sharing a process.
type Keys struct {
	// Program is the name the keys were built from, "k3s" or "rke2".
	Program string
	// SvcName and SvcNamespace label the DaemonSet and its pods with the Service they serve.
	SvcName      string
	SvcNamespace string
	// NodeSelector labels the DaemonSet "true" when it was rendered in allow-list mode.
	NodeSelector string
	// EnableLB is the node label whose presence on any node switches on allow-list mode.
	EnableLB string
	// LBPool is both the node label naming a node's pool and the Service label choosing one.
	LBPool string
	// PriorityClassName is the Service annotation overriding the LB pods' priority class.
	PriorityClassName string
	// Tolerations is the Service annotation adding tolerations (a JSON or YAML list).
	Tolerations string
	// IPMode is the Service annotation choosing the ingress ipMode ("vip" or "proxy").
	IPMode string
	// LegacyFinalizer is the finalizer the pre-2022 controller put on Services; only removed.
	LegacyFinalizer string
}

// NewKeys builds the keys for program; an empty program means DefaultProgram. Check the
// result with Validate when program comes from a user.
func NewKeys(program string) Keys {
	if program == "" {
		program = DefaultProgram
	}
	prefix := "svccontroller." + program + ".cattle.io/"
	return Keys{
		Program:           program,
		SvcName:           prefix + "svcname",
		SvcNamespace:      prefix + "svcnamespace",
		NodeSelector:      prefix + "nodeselector",
		EnableLB:          prefix + "enablelb",
		LBPool:            prefix + "lbpool",
		PriorityClassName: prefix + "priorityclassname",
		Tolerations:       prefix + "tolerations",
		IPMode:            prefix + "ipmode",
		LegacyFinalizer:   prefix + "daemonset",
	}
}

// PoolLabel returns the node label key `lbpool.svccontroller.<program>.cattle.io/<pool>` whose
// value "true" puts a node in pool, so that one node can be in several pools (as
// K3s since PR #14547).
func (k Keys) PoolLabel(pool string) string {
	return "lbpool.svccontroller." + k.Program + ".cattle.io/" + pool
}

// Validate reports whether every key is a valid label key, which holds when the program name
// is a DNS label.
func (k Keys) Validate() error {
	var errs []error
	for _, key := range []string{k.SvcName, k.SvcNamespace, k.NodeSelector, k.EnableLB, k.LBPool,
		k.PriorityClassName, k.Tolerations, k.IPMode, k.LegacyFinalizer, k.PoolLabel("pool")} {
		for _, msg := range validation.IsQualifiedName(key) {
			errs = append(errs, fmt.Errorf("key %q built from program %q: %s", key, k.Program, msg))
		}
	}
	return errors.Join(errs...)
}
