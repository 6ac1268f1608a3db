package servicelb

import corev1 "k8s.io/api/core/v1"

// serves reports whether ServiceLB is the load balancer of svc: it is of type LoadBalancer and
// either names no loadBalancerClass, or names class, the one this controller was configured to
// answer to as well (class "" answers to unclassed Services only).
//
// The upstream service controller skips classed Services, but K3s's status worker
// does not and can overwrite another implementation's ingress; every path that writes (the
// DaemonSet and the status) asks this first.
func serves(svc *corev1.Service, class string) bool {
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	// "loadBalancerClass ... If not set, the default load balancer implementation is used"
	// (Service API). The API rejects an empty string, so treat one like an unset field.
	if svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == "" {
		return true
	}
	return class != "" && *svc.Spec.LoadBalancerClass == class
}
