package ccmstub

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// LoadBalancer is the load-balancer controller the stub hosts, as K3s's cloud controller hosts
// ServiceLB. servicelb's Controller satisfies it; so does any controller that follows
// the k3snet controller contract.
type LoadBalancer interface {
	// Start registers the controller's informers on factory, starts it, waits for its caches,
	// launches its workers and returns; the workers stop when ctx ends.
	Start(ctx context.Context, factory informers.SharedInformerFactory) error
}

// Options configures the cloud-controller stub. The zero value of each field means K3s's
// default: both parts on, keys built from "k3s", one worker.
//
// As in K3s, the stub runs when either part is on; with both off, Start does nothing.
type Options struct {
	// DisableNodes turns off the node part (addresses, providerID, labels and the
	// uninitialized taint), for clusters where an external cloud controller owns nodes. It is
	// K3s's --disable-cloud-controller.
	DisableNodes bool
	// DisableLoadBalancer turns off the hosted load balancer. It is K3s's --disable=servicelb.
	DisableLoadBalancer bool
	// LoadBalancer is the controller the load-balancer part runs, normally servicelb's
	// Controller built on the same client. It is required unless DisableLoadBalancer is set:
	// K3s's default is to host ServiceLB, so a missing one is a wiring mistake, not a choice.
	LoadBalancer LoadBalancer
	// Program is the name the annotation keys and the providerID scheme are built from: "k3s"
	// (the default) reads k3s.io/internal-ip and writes k3s://<node>; RKE2 uses "rke2".
	Program string
	// Workers is how many Nodes are synced at once; 0 means 1, the default of the upstream
	// cloud-node controller's --concurrent-node-syncs.
	Workers int
	// MetricsRegistry, if set, gets the stub's metrics: ccmstub_node_syncs_total,
	// ccmstub_nodes_initialized_total and ccmstub_uninitialized_nodes. The hosted load
	// balancer takes its own registry in its own options.
	MetricsRegistry metrics.KubeRegistry
	// EventRecorder records the Events on Nodes. When nil, Start builds one that writes
	// through the controller's client and stops it when its context ends.
	EventRecorder record.EventRecorder
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if o.Program == "" {
		o.Program = DefaultProgram
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if err := NewKeys(o.Program).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("option Program: %w", err))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("option Workers: %d is negative", o.Workers))
	}
	if !o.DisableLoadBalancer && o.LoadBalancer == nil {
		errs = append(errs, errors.New("option LoadBalancer is nil while the load-balancer part is on; pass the ServiceLB controller or set DisableLoadBalancer"))
	}
	return errors.Join(errs...)
}

// nodesOn and loadBalancerOn name the two parts' switches the way K3s's cloud config does
// (nodeEnabled, lbEnabled).
func (o Options) nodesOn() bool        { return !o.DisableNodes }
func (o Options) loadBalancerOn() bool { return !o.DisableLoadBalancer }
