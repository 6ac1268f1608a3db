// Package crdinstall installs the CustomResourceDefinitions a controller reads, idempotently:
// each controller installs its own before it starts its informers, so no controller depends on
// another having run first.
package crdinstall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// ChecksumAnnotation records on a CRD k3snet installs the SHA-256 of the definition it
// applied, so a restart with the same definition writes nothing.
const ChecksumAnnotation = "packaged.k3snet.io/checksum"

// ReadDir returns the contents of every file in dir of fsys (an embedded directory of CRD
// definitions), in name order, for Install.
func ReadDir(fsys fs.FS, dir string) ([][]byte, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("listing CRDs in %s: %w", dir, err)
	}
	defs := make([][]byte, 0, len(entries))
	for _, e := range entries {
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading CRD %s: %w", e.Name(), err)
		}
		defs = append(defs, data)
	}
	return defs, nil
}

// establishTimeout bounds the wait for a CRD to be served.
const establishTimeout = time.Minute

// Resource is the CustomResourceDefinition API's resource.
var Resource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Install applies each definition (one CRD per YAML document) with server-side apply as
// fieldManager, unless the live CRD carries the same checksum, and waits until every one is
// Established. It returns the CRDs' names.
func Install(ctx context.Context, dyn dynamic.Interface, fieldManager string, definitions ...[]byte) ([]string, error) {
	names := make([]string, 0, len(definitions))
	for _, data := range definitions {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			return nil, fmt.Errorf("parsing a CRD: %w", err)
		}
		name := obj.GetName()
		names = append(names, name)
		sum := sha256.Sum256(data)
		checksum := hex.EncodeToString(sum[:])
		live, err := dyn.Resource(Resource).Get(ctx, name, metav1.GetOptions{})
		if err == nil && live.GetAnnotations()[ChecksumAnnotation] == checksum {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("getting CRD %s: %w", name, err)
		}
		obj.SetAnnotations(map[string]string{ChecksumAnnotation: checksum})
		if _, err := dyn.Resource(Resource).Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return nil, fmt.Errorf("installing CRD %s: %w", name, err)
		}
		klog.FromContext(ctx).Info("Installed CRD", "crd", name)
	}
	return names, WaitEstablished(ctx, dyn, names)
}

// WaitEstablished waits until every CRD of names has condition Established=True, so that
// objects of their kinds are accepted (K3s #5081: a CR must not fail because its CRD was
// applied a moment earlier).
func WaitEstablished(ctx context.Context, dyn dynamic.Interface, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, establishTimeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, name := range names {
			crd, err := dyn.Resource(Resource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					pending = append(pending, name)
					continue
				}
				return false, fmt.Errorf("getting CRD %s: %w", name, err)
			}
			if !Established(crd) {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CRDs %v to be established: %w", pending, err)
	}
	return nil
}

// Established reports whether crd's Established condition is True.
func Established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
