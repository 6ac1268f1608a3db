package packaged

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestOwnerHashIsStablePerAddon(t *testing.T) {
	assert.Len(t, ownerHash("coredns"), 40, "hex SHA-1, a valid label value")
	assert.Equal(t, ownerHash("coredns"), ownerHash("coredns"))
	assert.NotEqual(t, ownerHash("coredns"), ownerHash("traefik"))
}

func TestDesiredObject(t *testing.T) {
	newCM := func(ns string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetName("a")
		u.SetNamespace(ns)
		u.SetLabels(map[string]string{"app": "x"})
		return u
	}
	tests := []struct {
		name       string
		obj        *unstructured.Unstructured
		namespaced bool
		wantNS     string
	}{
		{name: "a namespaced object keeps its namespace", obj: newCM("x"), namespaced: true, wantNS: "x"},
		{name: "a namespaced object without namespace goes to default", obj: newCM(""), namespaced: true, wantNS: "default"},
		{name: "a cluster-scoped object loses a stray namespace", obj: newCM("x"), namespaced: false, wantNS: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.obj.DeepCopy()
			got := desiredObject(tt.obj, "coredns", tt.namespaced)
			assert.Equal(t, before, tt.obj, "the input is not mutated")
			assert.Equal(t, tt.wantNS, got.GetNamespace())
			assert.Equal(t, map[string]string{"app": "x", labelHash: ownerHash("coredns")}, got.GetLabels())
			assert.Equal(t, map[string]string{
				annotationSetID: "", annotationOwnerGVK: "k3s.cattle.io/v1, Kind=Addon",
				annotationOwnerName: "coredns", annotationOwnerNamespace: "kube-system",
			}, got.GetAnnotations())
		})
	}
}
