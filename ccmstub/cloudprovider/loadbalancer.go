package cloudprovider

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"
)

// loadBalancer tells the upstream service controller that load balancers are implemented
// elsewhere, which is how K3s runs ServiceLB: its EnsureLoadBalancer returns
// ImplementedElsewhere so that the upstream controller writes no status. Here the DaemonSets
// too are made elsewhere, by the ServiceLB controller, which watches Services itself and writes
// their status; the upstream controller is left managing its cleanup finalizer.
type loadBalancer struct{}

var _ cloudprovider.LoadBalancer = loadBalancer{}

// GetLoadBalancer reports that the upstream service controller made no load balancer, so on a
// Service's deletion it skips EnsureLoadBalancerDeleted and removes its finalizer.
func (loadBalancer) GetLoadBalancer(context.Context, string, *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	return nil, false, nil
}

// GetLoadBalancerName returns the framework's default name, "a" plus the Service's UID without dashes.
func (loadBalancer) GetLoadBalancerName(_ context.Context, _ string, svc *corev1.Service) string {
	return cloudprovider.DefaultLoadBalancerName(svc)
}

// EnsureLoadBalancer returns ImplementedElsewhere: the ServiceLB controller serves the Service.
func (loadBalancer) EnsureLoadBalancer(context.Context, string, *corev1.Service, []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	return nil, cloudprovider.ImplementedElsewhere
}

// UpdateLoadBalancer returns ImplementedElsewhere: node changes reach the ServiceLB controller
// through its own informers.
func (loadBalancer) UpdateLoadBalancer(context.Context, string, *corev1.Service, []*corev1.Node) error {
	return cloudprovider.ImplementedElsewhere
}

// EnsureLoadBalancerDeleted has nothing to delete: the ServiceLB controller removes its own
// DaemonSet. The interface forbids returning ImplementedElsewhere here.
func (loadBalancer) EnsureLoadBalancerDeleted(context.Context, string, *corev1.Service) error {
	return nil
}
