package packaged

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
)

// addonResource is the Addon API's resource.
func addonResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "k3s.cattle.io", Version: "v1", Resource: "addons"}
}

// addonClient reads and writes Addons. The deploy controller is driven by files, not by
// Addons, and it must see its own writes at once (get-or-create, then the checksum of the
// same pass), so it reads through the API rather than an informer cache.
type addonClient struct {
	dyn dynamic.Interface
}

func (c addonClient) res() dynamic.ResourceInterface {
	return c.dyn.Resource(addonResource()).Namespace(addonNamespace)
}

// getOrCreate returns the Addon name, creating it with spec.source = source when missing, so
// that Events about the file always have an object with a UID (K3s records them on the Addon too).
func (c addonClient) getOrCreate(ctx context.Context, name, source string) (*unstructured.Unstructured, error) {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("invalid Addon name %q for file %s: %s", name, source, strings.Join(errs, "; "))
	}
	addon, err := c.res().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return addon, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("getting Addon %s: %w", name, err)
	}
	addon = &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": addonAPIVersion,
		"kind":       addonKind,
		"metadata":   map[string]any{"name": name, "namespace": addonNamespace},
		"spec":       map[string]any{"source": source},
	}}
	created, err := c.res().Create(ctx, addon, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		created, err = c.res().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("creating Addon %s: %w", name, err)
	}
	return created, nil
}

// list returns every Addon by name. A pass that checks many files at once (the first after a
// start) reads them in one request instead of one GET a file.
func (c addonClient) list(ctx context.Context) (map[string]*unstructured.Unstructured, error) {
	list, err := c.res().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Addons: %w", err)
	}
	out := make(map[string]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].GetName()] = &list.Items[i]
	}
	return out, nil
}

// source returns spec.source of the Addon name, or "" when it cannot be read.
func (c addonClient) source(ctx context.Context, name string) string {
	addon, err := c.res().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return addonSource(addon)
}

// addonSource returns spec.source of addon, or "" for none.
func addonSource(addon *unstructured.Unstructured) string {
	if addon == nil {
		return ""
	}
	s, _, _ := unstructured.NestedString(addon.Object, "spec", "source")
	return s
}

// addonChecksum returns spec.checksum of addon.
func addonChecksum(addon *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(addon.Object, "spec", "checksum")
	return s
}

// addonRecord returns a copy of addon that records a successful apply of the file at source:
// spec.source, spec.checksum and the kinds applied, and whether it differs.
func addonRecord(addon *unstructured.Unstructured, source, checksum, gvks string) (*unstructured.Unstructured, bool) {
	out := addon.DeepCopy()
	changed := false
	for field, want := range map[string]string{"source": source, "checksum": checksum} {
		if got, _, _ := unstructured.NestedString(out.Object, "spec", field); got != want {
			_ = unstructured.SetNestedField(out.Object, want, "spec", field)
			changed = true
		}
	}
	a := out.GetAnnotations()
	if a[annotationGVKs] != gvks {
		if a == nil {
			a = map[string]string{}
		}
		a[annotationGVKs] = gvks
		out.SetAnnotations(a)
		changed = true
	}
	return out, changed
}

// update writes addon (no status subresource: the whole object goes through Update).
func (c addonClient) update(ctx context.Context, addon *unstructured.Unstructured) error {
	if _, err := c.res().Update(ctx, addon, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("updating Addon %s: %w", addon.GetName(), err)
	}
	return nil
}

// delete removes the Addon name; a missing one is not an error, so disabling is idempotent.
func (c addonClient) delete(ctx context.Context, name string) error {
	err := c.res().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Addon %s: %w", name, err)
	}
	return nil
}
