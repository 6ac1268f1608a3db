package servicelb

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// reservedPortErrors returns one error per port of svc that would claim a host port in
// reserved (Options.ReservedHostPorts), whatever its protocol. An LB pod takes each Service
// port as a hostPort on every node it runs on, so without this any user who may create a
// LoadBalancer Service can take node ports such as the kubelet's 10250 or the API server's
// 6443 from the programs that need them, as in K3s.
func reservedPortErrors(svc *corev1.Service, reserved []int32) field.ErrorList {
	var errs field.ErrorList
	for i, p := range svc.Spec.Ports {
		if slices.Contains(reserved, p.Port) {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "ports").Index(i).Child("port"),
				fmt.Sprintf("host port %d is reserved on the nodes; ServiceLB does not serve it", p.Port)))
		}
	}
	return errs
}
