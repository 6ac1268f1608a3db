package compose

import (
	"k8s.io/apimachinery/pkg/api/meta"
)

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
