package packaged

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

const (
	// crdGroup and crdKind identify CustomResourceDefinitions among a file's objects.
	crdGroup = "apiextensions.k8s.io"
	crdKind  = "CustomResourceDefinition"
	// establishTimeout bounds the wait for a CRD to be served.
	establishTimeout = time.Minute
)

// crdResource is the CustomResourceDefinition API's resource.
func crdResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: crdGroup, Version: "v1", Resource: "customresourcedefinitions"}
}

// isCRD reports whether obj is a CustomResourceDefinition.
func isCRD(obj *unstructured.Unstructured) bool {
	gvk := obj.GroupVersionKind()
	return gvk.Group == crdGroup && gvk.Kind == crdKind
}

// installCRDs applies the CRDs the package owns (Addon, HelmChart, HelmChartConfig) and waits
// until they are served. A CRD whose checksum annotation matches the embedded definition is
// not written, so a restart with nothing changed writes nothing.
func (a *applier) installCRDs(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	entries, err := fs.ReadDir(crdsFS, "crds")
	if err != nil {
		return fmt.Errorf("listing embedded CRDs: %w", err)
	}
	var names []string
	for _, e := range entries {
		data, err := fs.ReadFile(crdsFS, "crds/"+e.Name())
		if err != nil {
			return fmt.Errorf("reading embedded CRD %s: %w", e.Name(), err)
		}
		objs, err := parseManifest(data)
		if err != nil {
			return fmt.Errorf("parsing embedded CRD %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(data)
		checksum := hex.EncodeToString(sum[:])
		for _, obj := range objs {
			names = append(names, obj.GetName())
			live, err := a.dyn.Resource(crdResource()).Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err == nil && live.GetAnnotations()[annotationCRDChecksum] == checksum {
				continue
			}
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("getting CRD %s: %w", obj.GetName(), err)
			}
			obj.SetAnnotations(map[string]string{annotationCRDChecksum: checksum})
			_, err = a.dyn.Resource(crdResource()).Apply(ctx, obj.GetName(), obj,
				metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
			if err != nil {
				return fmt.Errorf("installing CRD %s: %w", obj.GetName(), err)
			}
			logger.Info("Installed CRD", "crd", obj.GetName())
		}
	}
	return a.waitEstablished(ctx, names)
}

// waitEstablished waits until every CRD of names has condition Established=True, then resets
// the RESTMapper so that their kinds resolve (K3s #5081: a CR must not fail
// because its CRD was applied a moment earlier).
func (a *applier) waitEstablished(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, establishTimeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, name := range names {
			crd, err := a.dyn.Resource(crdResource()).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					pending = append(pending, name)
					continue
				}
				return false, fmt.Errorf("getting CRD %s: %w", name, err)
			}
			if !crdEstablished(crd) {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CRDs %v to be established: %w", pending, err)
	}
	a.mapper.Reset()
	return nil
}

// crdEstablished reports whether crd's Established condition is True.
func crdEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
