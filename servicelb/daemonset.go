package servicelb

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/k3snet/k3snet/internal/systemimage"
)

const (
	// appLabel is the DaemonSet selector label; its value is the DaemonSet name.
	appLabel = "app"
	// maxNamePart keeps `svclb-<name>-<uid8>` within a 63-character label value.
	maxNamePart = 48

	controlPlaneTaint       = "node-role.kubernetes.io/control-plane"
	criticalAddonsOnlyTaint = "CriticalAddonsOnly"

	sysctlIPv4Forward = "net.ipv4.ip_forward"
	sysctlIPv6Forward = "net.ipv6.conf.all.forwarding"
)

// daemonSetParams is what newDaemonSet needs besides the Service: the controller's options and
// the one cluster-wide fact that shapes the object, whether allow-list mode is on.
type daemonSetParams struct {
	keys Keys
	// namespace is the LB namespace the DaemonSet lives in (K3s: --servicelb-namespace).
	namespace string
	// image is the klipper-lb image, without registry when registry is set; "" is DefaultImage.
	image string
	// registry is K3s's --system-default-registry; when set the image is pulled from it.
	registry string
	// priorityClassName is the LB pods' default priority class; "" is DefaultPriorityClassName.
	priorityClassName string
	// allowList is true when some node carries the enablelb label (see allowListMode).
	allowList bool
}

// invalidServiceError reports Service fields or annotations that cannot be rendered into a
// DaemonSet. Retrying does not help, so the controller absorbs it: a Warning Event with
// ReasonSyncLoadBalancerFailed and no requeue until the Service changes. K3s instead
// lets the upstream controller retry it forever with backoff.
type invalidServiceError struct {
	errs field.ErrorList
}

func (e *invalidServiceError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap exposes each field error, so errors.As finds a *field.Error.
func (e *invalidServiceError) Unwrap() []error {
	errs := make([]error, len(e.errs))
	for i, err := range e.errs {
		errs[i] = err
	}
	return errs
}

// newDaemonSet renders the DaemonSet that serves svc, in the exact shape K3s gives it
// so that a cluster can move between K3s and k3snet without churn, with these differences:
// source ranges are sorted and canonical, a pool is node affinity (so a node can sit in several
// pools), ETP Local reads status.hostIPs, and what K3s would render wrongly (DEST_PORT=0, bad
// annotations) is an *invalidServiceError instead.
//
// The result depends only on its arguments, so a second render of an unchanged Service is
// equal to the first and the controller writes nothing.
func newDaemonSet(svc *corev1.Service, p daemonSetParams) (*appsv1.DaemonSet, error) {
	var errs field.ErrorList
	families := serviceFamilies(svc)

	ranges, rangeErrs := sourceRanges(svc, families)
	errs = append(errs, rangeErrs...)
	extra, tolErrs := annotationTolerations(svc, p.keys)
	errs = append(errs, tolErrs...)
	containers, portErrs := containers(svc, strings.Join(ranges, ","), lbImage(p.registry, p.image))
	errs = append(errs, portErrs...)
	errs = append(errs, priorityClassErrors(svc, p.keys)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("rendering DaemonSet for Service %s/%s: %w",
			svc.Namespace, svc.Name, &invalidServiceError{errs: errs})
	}

	name := daemonSetName(svc.Name, svc.UID)
	labels := map[string]string{
		p.keys.NodeSelector: strconv.FormatBool(p.allowList),
		p.keys.SvcName:      svc.Name,
		p.keys.SvcNamespace: svc.Namespace,
	}
	podLabels := map[string]string{
		appLabel:            name,
		p.keys.SvcName:      svc.Name,
		p.keys.SvcNamespace: svc.Namespace,
	}

	ds := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: p.namespace,
			Labels:    labels,
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{appLabel: name}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					PriorityClassName:            priorityClassName(svc, p),
					ServiceAccountName:           ServiceAccountName,
					AutomountServiceAccountToken: new(false),
					SecurityContext:              &corev1.PodSecurityContext{Sysctls: forwardingSysctls(families)},
					Containers:                   containers,
					Tolerations:                  append(defaultTolerations(), extra...),
					NodeSelector:                 allowListSelector(p),
					Affinity:                     poolAffinity(servicePool(svc, p.allowList, p.keys), p.keys),
				},
			},
		},
	}
	return ds, nil
}

// daemonSetName is `svclb-<name>-<uid[:8]>`, the Service name cut to 48 characters and stripped
// of trailing hyphens so the whole stays a valid 63-character name.
func daemonSetName(svcName string, uid types.UID) string {
	if len(svcName) > maxNamePart {
		svcName = strings.TrimRight(svcName[:maxNamePart], "-")
	}
	id := string(uid)
	if len(id) > 8 {
		id = id[:8]
	}
	return "svclb-" + svcName + "-" + id
}

// lbImage prefixes image with K3s's --system-default-registry, as K3s does for every system
// image it deploys.
func lbImage(registry, image string) string {
	if image == "" {
		image = DefaultImage
	}
	return systemimage.Name(registry, image)
}

// priorityClassName is the annotation's value when the key is present, even empty (which
// leaves the pods without a priority class), else the configured default.
func priorityClassName(svc *corev1.Service, p daemonSetParams) string {
	if v, ok := svc.Annotations[p.keys.PriorityClassName]; ok {
		return v
	}
	if p.priorityClassName != "" {
		return p.priorityClassName
	}
	return DefaultPriorityClassName
}

// priorityClassErrors checks the priority class annotation as the API server checks a pod
// template's priorityClassName (a DNS subdomain), so a bad value is a Warning on the Service
// rather than a DaemonSet the API server refuses on every retry.
func priorityClassErrors(svc *corev1.Service, keys Keys) field.ErrorList {
	v := svc.Annotations[keys.PriorityClassName]
	if v == "" {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(keys.PriorityClassName), v, msg))
	}
	return errs
}

// forwardingSysctls turns on forwarding for the Service's families only: setting the IPv6 one
// unconditionally broke pods on hosts with IPv6 disabled (K3s #10455). The kubelet
// must allow these unsafe sysctls.
func forwardingSysctls(families []corev1.IPFamily) []corev1.Sysctl {
	out := make([]corev1.Sysctl, 0, len(families))
	for _, fam := range families {
		switch fam {
		case corev1.IPv4Protocol:
			out = append(out, corev1.Sysctl{Name: sysctlIPv4Forward, Value: "1"})
		case corev1.IPv6Protocol:
			out = append(out, corev1.Sysctl{Name: sysctlIPv6Forward, Value: "1"})
		}
	}
	return out
}

// defaultTolerations lets LB pods run on control-plane nodes and on nodes reserved for critical
// add-ons; the DaemonSet controller adds its own not-ready/pressure tolerations.
func defaultTolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: controlPlaneTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: criticalAddonsOnlyTaint, Operator: corev1.TolerationOpExists},
	}
}

// allowListSelector restricts the pods to nodes labelled enablelb=true once allow-list mode
// is on.
func allowListSelector(p daemonSetParams) map[string]string {
	if !p.allowList {
		return nil
	}
	return map[string]string{p.keys.EnableLB: "true"}
}

// poolAffinity restricts the pods to the Service's pool: nodes whose lbpool label is pool, or
// whose lbpool.svccontroller.<program>.cattle.io/<pool> label is "true". Node selector terms
// are OR-ed, which is what lets a node sit in several pools (K3s PR #14547).
// The caller passes "" outside allow-list mode (see servicePool).
func poolAffinity(pool string, keys Keys) *corev1.Affinity {
	if pool == "" {
		return nil
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: keys.LBPool, Operator: corev1.NodeSelectorOpIn, Values: []string{pool}},
				}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: keys.PoolLabel(pool), Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}},
				}},
			},
		},
	}}
}

// containers renders one klipper-lb container per Service port. The env is the LB
// pod's whole input: SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT, DEST_IPS.
func containers(svc *corev1.Service, ranges, image string) ([]corev1.Container, field.ErrorList) {
	var errs field.ErrorList
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal

	// ETP Cluster forwards to the cluster IPs; ETP Local forwards to <hostIP>:<nodePort> so that
	// kube-proxy's Local rules for the NodePort decide. status.hostIPs lists every
	// family's host IP, where the older status.hostIP had the primary one only.
	var destIPs string
	if !local {
		ips := clusterIPs(svc)
		if len(ips) == 0 {
			errs = append(errs, field.Required(field.NewPath("spec", "clusterIPs"),
				"ServiceLB forwards to the cluster IPs"))
		}
		destIPs = strings.Join(ips, ",")
	}
	if len(svc.Spec.Ports) == 0 {
		errs = append(errs, field.Required(field.NewPath("spec", "ports"), "a LoadBalancer Service needs a port"))
	}

	out := make([]corev1.Container, 0, len(svc.Spec.Ports))
	for i, port := range svc.Spec.Ports {
		proto := port.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // the API default
		}
		destPort := port.Port
		if local {
			destPort = port.NodePort
			// allocateLoadBalancerNodePorts: false leaves nodePort 0; K3s renders DEST_PORT=0
			// and the pod forwards nowhere.
			if destPort == 0 {
				errs = append(errs, field.Required(field.NewPath("spec", "ports").Index(i).Child("nodePort"),
					"externalTrafficPolicy Local forwards to the node port, but none is allocated "+
						"(spec.allocateLoadBalancerNodePorts is false)"))
			}
		}
		name := "lb-" + strings.ToLower(string(proto)) + "-" + strconv.Itoa(int(port.Port))
		out = append(out, corev1.Container{
			Name:            name,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{{
				Name:          name,
				ContainerPort: port.Port,
				HostPort:      port.Port,
				Protocol:      proto,
			}},
			Env: []corev1.EnvVar{
				{Name: "SRC_PORT", Value: strconv.Itoa(int(port.Port))},
				{Name: "SRC_RANGES", Value: ranges},
				{Name: "DEST_PROTO", Value: string(proto)},
				{Name: "DEST_PORT", Value: strconv.Itoa(int(destPort))},
				destIPsEnv(local, destIPs),
			},
			SecurityContext: &corev1.SecurityContext{
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
			},
		})
	}
	return out, errs
}

// destIPsEnv is the DEST_IPS variable; each container gets its own, so no two containers share
// a pointer.
func destIPsEnv(local bool, ips string) corev1.EnvVar {
	if !local {
		return corev1.EnvVar{Name: "DEST_IPS", Value: ips}
	}
	return corev1.EnvVar{Name: "DEST_IPS", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIPs"},
	}}
}
