package packaged

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The ClusterCIDR API as the K3s docs write it, and as k3snet stores it: the in-tree alpha
// group was removed from Kubernetes, so the clustercidr package serves the same kind from the
// out-of-tree group.
const (
	clusterCIDRKind       = "ClusterCIDR"
	clusterCIDRAlphaGroup = "networking.k8s.io/v1alpha1"
	clusterCIDROurGroup   = "networking.x-k8s.io/v1"
)

// errParse marks a file whose content is not a stream of Kubernetes objects; the deploy
// controller reports it as ParseManifestFailed.
var errParse = errors.New("invalid manifest")

// parseManifest returns the objects of a manifest file in document order, as K3s's deploy controller reads them:
// a multi-document YAML (or JSON) stream; documents that hold only whitespace, comments or
// "---" are ignored; a List (kind "List" or "<Kind>List" with items) is replaced by its items.
// ClusterCIDR documents of networking.k8s.io/v1alpha1 are rewritten to networking.x-k8s.io/v1.
// Every object must have apiVersion, kind and metadata.name: server-side apply needs a name.
func parseManifest(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading document %d: %w", errParse, doc, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: document %d: %w", errParse, doc, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%w: document %d: %w", errParse, doc, err)
		}
		items := []*unstructured.Unstructured{obj}
		if obj.IsList() {
			items = items[:0]
			err := obj.EachListItem(func(o runtime.Object) error {
				u, ok := o.(*unstructured.Unstructured)
				if !ok {
					return fmt.Errorf("list item of type %T", o)
				}
				items = append(items, u)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("%w: document %d: %w", errParse, doc, err)
			}
		}
		for i, item := range items {
			if err := checkObject(item); err != nil {
				return nil, fmt.Errorf("%w: document %d, object %d: %w", errParse, doc, i+1, err)
			}
			rewriteClusterCIDR(item)
			objs = append(objs, item)
		}
	}
	return objs, nil
}

// checkObject reports what server-side apply would miss in obj.
func checkObject(obj *unstructured.Unstructured) error {
	var errs []error
	if obj.GetAPIVersion() == "" {
		errs = append(errs, errors.New("apiVersion is missing"))
	}
	if obj.GetKind() == "" {
		errs = append(errs, errors.New("kind is missing"))
	}
	if obj.GetName() == "" {
		errs = append(errs, fmt.Errorf("%s: metadata.name is missing", obj.GetKind()))
	}
	return errors.Join(errs...)
}

// rewriteClusterCIDR moves a ClusterCIDR of the K3s docs' group to the group k3snet serves.
func rewriteClusterCIDR(obj *unstructured.Unstructured) {
	if obj.GetAPIVersion() == clusterCIDRAlphaGroup && obj.GetKind() == clusterCIDRKind {
		obj.SetAPIVersion(clusterCIDROurGroup)
	}
}

// fileGVKs returns the distinct kinds of objs in order of first appearance.
func fileGVKs(objs []*unstructured.Unstructured) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if !seen[gvk] {
			seen[gvk] = true
			out = append(out, gvk)
		}
	}
	return out
}

// formatGVKs renders kinds as the addon.k3s.cattle.io/gvks annotation does: GroupVersionKind
// strings ("apps/v1, Kind=Deployment") joined by ";".
func formatGVKs(gvks []schema.GroupVersionKind) string {
	s := make([]string, 0, len(gvks))
	for _, g := range gvks {
		s = append(s, g.String())
	}
	return strings.Join(s, ";")
}

// parseGVKs reads the addon.k3s.cattle.io/gvks annotation; entries it cannot read are
// skipped, because a damaged annotation must not block the file's own kinds.
func parseGVKs(s string) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		gv, kind, ok := strings.Cut(part, ", Kind=")
		if !ok || kind == "" {
			continue
		}
		parsed, err := schema.ParseGroupVersion(gv)
		if err != nil {
			continue
		}
		out = append(out, parsed.WithKind(kind))
	}
	return out
}
