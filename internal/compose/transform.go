package compose

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// cacheTransform is the shared informers' transform for a process running controllers:
// dropManagedFields, and where a single controller reads Pods and says which fields
// (Controller.PodFields) while every other reads none, Pods trimmed to those fields. On a
// node, NetworkPolicy is that controller: the Pods of the whole cluster are its largest
// cache, and it reads a fifth of each.
func cacheTransform(controllers []Controller) cache.TransformFunc {
	var podFields func(*corev1.Pod) *corev1.Pod
	for _, c := range controllers {
		switch {
		case c.ReadsNoPods:
		case c.PodFields == nil || podFields != nil:
			return dropManagedFields
		default:
			podFields = c.PodFields
		}
	}
	if podFields == nil {
		return dropManagedFields
	}
	return func(obj any) (any, error) {
		if pod, ok := obj.(*corev1.Pod); ok {
			return podFields(pod), nil
		}
		return dropManagedFields(obj)
	}
}

// dropManagedFields is the shared informers' transform: it clears metadata.managedFields
// before an object enters the cache. No controller reads them (they write by server-side
// apply, which needs no local copy, or by Update, where an object without managedFields
// leaves the server's as they are), and they are a large share of a cached object: two or
// three entries of field sets on every Pod and Node. kube-scheduler and
// kube-controller-manager drop them from their caches the same way.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
