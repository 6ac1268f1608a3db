package helmjob

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// upToDate reports whether live, an object as read, holds every field want sets: its labels
// and owner references among live's, and its content. Fields others add (annotations,
// labels, owners) do not count.
func upToDate(live, want any) bool {
	switch w := want.(type) {
	case *corev1.ServiceAccount:
		l, ok := live.(*corev1.ServiceAccount)
		return ok && metaUpToDate(&l.ObjectMeta, &w.ObjectMeta) &&
			ptr.Equal(l.AutomountServiceAccountToken, w.AutomountServiceAccountToken)
	case *corev1.Secret:
		l, ok := live.(*corev1.Secret)
		return ok && metaUpToDate(&l.ObjectMeta, &w.ObjectMeta) && l.Type == w.Type &&
			maps.EqualFunc(l.Data, w.Data, func(a, b []byte) bool { return string(a) == string(b) })
	case *corev1.ConfigMap:
		l, ok := live.(*corev1.ConfigMap)
		return ok && metaUpToDate(&l.ObjectMeta, &w.ObjectMeta) && maps.Equal(l.Data, w.Data)
	case *rbacv1.ClusterRoleBinding:
		l, ok := live.(*rbacv1.ClusterRoleBinding)
		return ok && metaUpToDate(&l.ObjectMeta, &w.ObjectMeta) && l.RoleRef == w.RoleRef &&
			apiequality.Semantic.DeepEqual(l.Subjects, w.Subjects)
	}
	return false
}

// metaUpToDate reports whether live has want's labels and owner references.
func metaUpToDate(live, want *metav1.ObjectMeta) bool {
	for k, v := range want.Labels {
		if got, ok := live.Labels[k]; !ok || got != v {
			return false
		}
	}
	for _, ref := range want.OwnerReferences {
		if !slices.ContainsFunc(live.OwnerReferences, func(r metav1.OwnerReference) bool {
			return apiequality.Semantic.DeepEqual(r, ref)
		}) {
			return false
		}
	}
	return true
}
