package servicelb

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
)

// daemonSetUpToDate reports whether live already has every field newDaemonSet renders in want,
// so the controller applies only when something differs and a resync writes nothing (syncs are
// idempotent). It compares the rendered fields only: the API server defaults many others
// (terminationMessagePath, dnsPolicy, maxSurge, ...), which a whole-object comparison would
// always find different. Maps we render are compared as subsets, except the node selector,
// whose extra entries are exactly the stale allow-list K3s never removes (K3s #14625).
func daemonSetUpToDate(live, want *appsv1.DaemonSet) bool {
	if !subset(want.Labels, live.Labels) ||
		!equality.Semantic.DeepEqual(live.Spec.Selector, want.Spec.Selector) ||
		live.Spec.UpdateStrategy.Type != want.Spec.UpdateStrategy.Type {
		return false
	}
	if w := want.Spec.UpdateStrategy.RollingUpdate; w != nil {
		l := live.Spec.UpdateStrategy.RollingUpdate
		if l == nil || !equality.Semantic.DeepEqual(l.MaxUnavailable, w.MaxUnavailable) {
			return false
		}
	}
	lt, wt := &live.Spec.Template, &want.Spec.Template
	if !subset(wt.Labels, lt.Labels) {
		return false
	}
	ls, ws := &lt.Spec, &wt.Spec
	if ls.PriorityClassName != ws.PriorityClassName ||
		ls.ServiceAccountName != ws.ServiceAccountName ||
		!equality.Semantic.DeepEqual(ls.AutomountServiceAccountToken, ws.AutomountServiceAccountToken) ||
		!equality.Semantic.DeepEqual(sysctls(ls.SecurityContext), sysctls(ws.SecurityContext)) ||
		!equality.Semantic.DeepEqual(ls.Tolerations, ws.Tolerations) ||
		!equality.Semantic.DeepEqual(ls.NodeSelector, ws.NodeSelector) ||
		!equality.Semantic.DeepEqual(ls.Affinity, ws.Affinity) ||
		len(ls.Containers) != len(ws.Containers) {
		return false
	}
	for i := range ws.Containers {
		if !containerUpToDate(&ls.Containers[i], &ws.Containers[i]) {
			return false
		}
	}
	return true
}

// containerUpToDate compares the container fields containers renders.
func containerUpToDate(live, want *corev1.Container) bool {
	if live.Name != want.Name || live.Image != want.Image || live.ImagePullPolicy != want.ImagePullPolicy ||
		len(live.Ports) != len(want.Ports) ||
		!equality.Semantic.DeepEqual(live.Env, want.Env) ||
		!equality.Semantic.DeepEqual(capabilities(live.SecurityContext), capabilities(want.SecurityContext)) {
		return false
	}
	for i, w := range want.Ports {
		l := live.Ports[i]
		if l.Name != w.Name || l.ContainerPort != w.ContainerPort || l.HostPort != w.HostPort || l.Protocol != w.Protocol {
			return false
		}
	}
	return true
}

func sysctls(sc *corev1.PodSecurityContext) []corev1.Sysctl {
	if sc == nil {
		return nil
	}
	return sc.Sysctls
}

func capabilities(sc *corev1.SecurityContext) *corev1.Capabilities {
	if sc == nil {
		return nil
	}
	return sc.Capabilities
}

// subset reports whether every entry of want is in have.
func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// applyConfiguration turns the rendered DaemonSet into the apply configuration sent with
// server-side apply. The typed object and the apply configuration share their JSON form; the
// status is dropped, since an apply request owns what it sends and the status is not ours.
// Everything newDaemonSet leaves unset stays out of the request, so the fields we stop
// rendering (a node selector after allow-list mode ends) are removed by the next apply.
func applyConfiguration(ds *appsv1.DaemonSet) (*appsv1ac.DaemonSetApplyConfiguration, error) {
	data, err := json.Marshal(ds)
	if err != nil {
		return nil, fmt.Errorf("encoding DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	ac := &appsv1ac.DaemonSetApplyConfiguration{}
	if err := json.Unmarshal(data, ac); err != nil {
		return nil, fmt.Errorf("decoding DaemonSet %s/%s as an apply configuration: %w", ds.Namespace, ds.Name, err)
	}
	ac.Status = nil
	return ac, nil
}
