package clustercidr

import "errors"

// Sentinel errors of the allocator. Callers test them with errors.Is; the messages that wrap
// them name the node, ClusterCIDR and CIDRs involved.
var (
	// ErrNoCIDRAvailable means no ClusterCIDR that selects the node has a free block in every
	// family it defines (or none selects it). The controller reports it as the Node Event
	// CIDRNotAvailable, as kube-controller-manager did, and retries when capacity frees.
	ErrNoCIDRAvailable = errors.New("no pod CIDR available")

	// ErrCIDROutsideClusterCIDRs means a node's existing pod CIDR lies in no ClusterCIDR. Occupy
	// still holds the CIDR (see Allocator.Occupy); the controller reports a Warning Event instead
	// of crash-looping as upstream did at start-up.
	ErrCIDROutsideClusterCIDRs = errors.New("pod CIDR is outside every ClusterCIDR")

	// ErrAlreadyAllocated means the CIDR overlaps one another node holds, or the node passed to
	// Allocate already has pod CIDRs (they are immutable once set).
	ErrAlreadyAllocated = errors.New("already allocated")

	// ErrInvalidClusterCIDR means a ClusterCIDR spec breaks a validation rule of the ClusterCIDR API, or differs from
	// the spec already known under its name (all spec fields are immutable). Every FieldError
	// matches it. A bad spec is permanent: Warning Event, no retry.
	ErrInvalidClusterCIDR = errors.New("invalid ClusterCIDR")

	// ErrInvalidNode means the node given to the allocator has no name or unusable pod CIDRs
	// (more than one per family, IPv4-mapped IPv6).
	ErrInvalidNode = errors.New("invalid node")
)

// FieldError is one invalid field of a ClusterCIDR spec. ValidateClusterCIDRSpec returns them
// joined with errors.Join; each one matches ErrInvalidClusterCIDR under errors.Is.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "spec.perNodeHostBits".
	Field string
	// Detail says what is wrong with it.
	Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// Is makes every FieldError match ErrInvalidClusterCIDR.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidClusterCIDR }
