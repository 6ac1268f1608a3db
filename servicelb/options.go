package servicelb

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// Options configures the ServiceLB controller. The zero value of each field means K3s's default.
type Options struct {
	// Namespace is where the per-Service DaemonSets live (K3s: --servicelb-namespace);
	// "" is DefaultNamespace.
	Namespace string
	// Program is the name the label and annotation keys are built from (see NewKeys); "" is
	// DefaultProgram, RKE2 passes "rke2".
	Program string
	// Image is the klipper-lb image of the LB pods; "" is DefaultImage.
	Image string
	// SystemDefaultRegistry prefixes Image, as K3s's --system-default-registry does.
	SystemDefaultRegistry string
	// DefaultPriorityClassName is the LB pods' priority class unless a Service overrides it;
	// "" is DefaultPriorityClassName.
	DefaultPriorityClassName string
	// LoadBalancerClass is the spec.loadBalancerClass this controller answers to besides
	// unclassed Services; "" means unclassed Services only (see serves).
	LoadBalancerClass string
	// IPMode is the ipMode of the published ingress entries unless a Service's ipmode
	// annotation says otherwise: "" or VIP (K3s's behaviour), or Proxy.
	IPMode corev1.LoadBalancerIPMode
	// EventRecorder records the Events on Services. When nil, Start builds one that writes
	// through the controller's client and stops it when its context ends.
	EventRecorder record.EventRecorder
	// Workers is the number of Services synced at once; 0 means 1, as K3s's
	// --concurrent-service-syncs default.
	Workers int
	// ReservedHostPorts are node ports no LoadBalancer Service may claim, for any protocol:
	// a Service with such a port gets a Warning Event (SyncLoadBalancerFailed), no DaemonSet
	// (one it had is deleted) and an empty status. By default none are reserved, as in K3s:
	// any user who may create a LoadBalancer Service can then take node ports such as the
	// kubelet's 10250 or the API server's 6443 on every node an LB pod fits on.
	ReservedHostPorts []int32
	// MetricsRegistry, if set, gets the controller's metrics: servicelb_syncs_total,
	// servicelb_status_updates_total and servicelb_served_services. Each Controller registers
	// its own, so give two instances two registries.
	MetricsRegistry metrics.KubeRegistry
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Program == "" {
		o.Program = DefaultProgram
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.DefaultPriorityClassName == "" {
		o.DefaultPriorityClassName = DefaultPriorityClassName
	}
	if o.IPMode == "" {
		o.IPMode = corev1.LoadBalancerIPModeVIP
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, msg))
		}
	}
	if err := NewKeys(o.Program).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("program %q: %w", o.Program, err))
	}
	switch o.IPMode {
	case "", corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy:
	default:
		errs = append(errs, fmt.Errorf("ipMode %q: must be %s or %s", o.IPMode,
			corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy))
	}
	if o.LoadBalancerClass != "" {
		for _, msg := range validation.IsQualifiedName(o.LoadBalancerClass) {
			errs = append(errs, fmt.Errorf("loadBalancerClass %q: %s", o.LoadBalancerClass, msg))
		}
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d: must not be negative", o.Workers))
	}
	for _, p := range o.ReservedHostPorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("reserved host port %d: must be between 1 and 65535", p))
		}
	}
	return errors.Join(errs...)
}
