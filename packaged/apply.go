package packaged

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
)

// defaultNamespace is where a namespaced object without metadata.namespace goes, as with
// kubectl apply.
const defaultNamespace = metav1.NamespaceDefault

// errUnknownKind marks an object whose kind the API server does not serve.
var errUnknownKind = errors.New("kind not served by the API server")

// applier writes objects with server-side apply and prunes them by owner label. Kinds are
// resolved through a RESTMapper built from discovery; it is reset whenever a kind is missing,
// so a CRD applied a moment ago is found.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

// objKey identifies one object independently of the API version it was read through.
type objKey struct {
	gk        schema.GroupKind
	namespace string
	name      string
}

// mapping resolves gvk, resetting the discovery cache once on a miss. A version the server
// no longer serves falls back to the kind's preferred version, so pruning still finds objects
// recorded under an old version.
func (a *applier) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		m, err = a.mapper.RESTMapping(gvk.GroupKind())
	}
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%s: %w", gvk, errUnknownKind)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", gvk, err)
	}
	return m, nil
}

// desiredObject returns a copy of obj ready to apply for the Addon addon: the namespace set
// as its scope requires and the K3s owner identity added.
func desiredObject(obj *unstructured.Unstructured, addon string, namespaced bool) *unstructured.Unstructured {
	out := obj.DeepCopy()
	switch {
	case !namespaced:
		out.SetNamespace("")
	case out.GetNamespace() == "":
		out.SetNamespace(defaultNamespace)
	}
	l := out.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[labelHash] = ownerHash(addon)
	out.SetLabels(l)
	a := out.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[annotationSetID] = ""
	a[annotationOwnerGVK] = addonGVKString
	a[annotationOwnerName] = addon
	a[annotationOwnerNamespace] = addonNamespace
	out.SetAnnotations(a)
	return out
}

// apply server-side applies obj for the Addon addon and returns the key it was stored under.
// Force takes over fields another manager (K3s's apply engine, a user's kubectl) holds: the
// file is the source of truth for the fields it sets (as in K3s, fields in the manifest are
// reset on apply; fields it does not set are left to others).
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, addon string) (objKey, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapping(gvk)
	if err != nil {
		return objKey{}, err
	}
	desired := desiredObject(obj, addon, m.Scope.Name() == meta.RESTScopeNameNamespace)
	key := objKey{gk: gvk.GroupKind(), namespace: desired.GetNamespace(), name: desired.GetName()}
	_, err = a.dyn.Resource(m.Resource).Namespace(key.namespace).Apply(ctx, key.name, desired,
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return key, fmt.Errorf("applying %s %s: %w", gvk.Kind, klog.KRef(key.namespace, key.name), err)
	}
	return key, nil
}

// prune deletes every object of the kinds gvks that carries the owner label of the Addon
// addon and is not in keep. Kinds the server does not serve hold nothing to prune. Objects
// labelled objectset.rio.cattle.io/prune=false are kept, as K3s keeps them.
func (a *applier) prune(ctx context.Context, addon string, gvks []schema.GroupVersionKind, keep map[objKey]bool) error {
	logger := klog.FromContext(ctx)
	selector := labels.Set{labelHash: ownerHash(addon)}.String()
	var errs []error
	for _, gvk := range gvks {
		m, err := a.mapping(gvk)
		if errors.Is(err, errUnknownKind) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list, err := a.dyn.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s of Addon %s: %w", m.Resource.Resource, addon, err))
			continue
		}
		for i := range list.Items {
			item := &list.Items[i]
			key := objKey{gk: gvk.GroupKind(), namespace: item.GetNamespace(), name: item.GetName()}
			if keep[key] || item.GetLabels()[labelPrune] == "false" || item.GetDeletionTimestamp() != nil {
				continue
			}
			err := a.dyn.Resource(m.Resource).Namespace(key.namespace).Delete(ctx, key.name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting %s %s: %w", gvk.Kind, klog.KRef(key.namespace, key.name), err))
				continue
			}
			logger.V(2).Info("Pruned object", "kind", gvk.Kind, "object", klog.KRef(key.namespace, key.name), "addon", addon)
		}
	}
	return errors.Join(errs...)
}
