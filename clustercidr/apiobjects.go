package clustercidr

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// GroupVersionResource of ClusterCIDR objects, for the dynamic client and informer.
var clusterCIDRGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// crdGVR is the CustomResourceDefinition resource. The CRD goes through the dynamic client so
// the package needs no apiextensions client module.
var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdEstablishTimeout bounds the wait for the CRD's Established condition at start.
const crdEstablishTimeout = time.Minute

// installCRD creates or updates the ClusterCIDR CRD by server-side apply (issue 6, "The API":
// installed at start from embedded YAML) and waits until the API server reports it
// Established, so the informer's first list does not fail.
func installCRD(ctx context.Context, dyn dynamic.Interface) error {
	var obj unstructured.Unstructured
	if err := utilyaml.Unmarshal(crdYAML, &obj.Object); err != nil {
		return fmt.Errorf("decoding the embedded CRD: %w", err)
	}
	crds := dyn.Resource(crdGVR)
	if _, err := crds.Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying CRD %s: %w", obj.GetName(), err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, crdEstablishTimeout, true, func(ctx context.Context) (bool, error) {
		cur, err := crds.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CRD %s to be Established: %w", obj.GetName(), err)
	}
	return nil
}

// createDefaultClusterCIDR creates default-cluster-cidr from the flags if no object of that
// name exists. An existing one is left alone whatever it says: upstream created it once and a
// later flag change does not alter it, and its spec is immutable anyway.
func createDefaultClusterCIDR(ctx context.Context, dyn dynamic.Interface, spec ClusterCIDRSpec) (created bool, err error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&spec)
	if err != nil {
		return false, fmt.Errorf("encoding the default ClusterCIDR: %w", err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": raw}}
	obj.SetAPIVersion(Group + "/" + Version)
	obj.SetKind(Kind)
	obj.SetName(DefaultClusterCIDRName)
	// The finalizer comes with the object, as upstream's Create did, so the
	// default never exists unguarded.
	obj.SetFinalizers([]string{Finalizer})
	_, err = dyn.Resource(clusterCIDRGVR).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	default:
		return false, fmt.Errorf("creating ClusterCIDR %s: %w", DefaultClusterCIDRName, err)
	}
}

// specFromObject decodes a ClusterCIDR object's spec.
func specFromObject(obj *unstructured.Unstructured) (ClusterCIDRSpec, error) {
	var spec ClusterCIDRSpec
	raw, _, err := unstructured.NestedMap(obj.Object, "spec")
	if err != nil {
		return spec, fmt.Errorf("ClusterCIDR %s: spec: %w", obj.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
		return spec, fmt.Errorf("ClusterCIDR %s: spec: %w", obj.GetName(), err)
	}
	return spec, nil
}

// finalizerPatch is a JSON merge patch that sets metadata.finalizers to finalizers,
// conditional on resourceVersion: a merge patch replaces the whole list, so it must not
// overwrite a change made since the object was read.
func finalizerPatch(resourceVersion string, finalizers []string) ([]byte, error) {
	if finalizers == nil {
		finalizers = []string{}
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": resourceVersion,
		"finalizers":      finalizers,
	}})
}

// setFinalizer adds (want) or removes (!want) Finalizer on the ClusterCIDR, writing only if
// that changes the list.
func setFinalizer(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured, want bool) error {
	cur := obj.GetFinalizers()
	has := slices.Contains(cur, Finalizer)
	if has == want {
		return nil
	}
	var next []string
	if want {
		next = append(slices.Clone(cur), Finalizer)
	} else {
		next = slices.DeleteFunc(slices.Clone(cur), func(f string) bool { return f == Finalizer })
	}
	patch, err := finalizerPatch(obj.GetResourceVersion(), next)
	if err != nil {
		return err
	}
	_, err = dyn.Resource(clusterCIDRGVR).Patch(ctx, obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !(apierrors.IsNotFound(err) && !want) {
		return fmt.Errorf("patching finalizers of ClusterCIDR %s: %w", obj.GetName(), err)
	}
	return nil
}
