package packaged

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/k3snet/k3snet/packaged/helm"
)

func TestImages(t *testing.T) {
	got, err := Images(helm.RenderInline)
	require.NoError(t, err)
	want := []Image{
		{Manifest: "coredns", Container: "coredns", Ref: "rancher/mirrored-coredns-coredns:1.12.3"},
		{Manifest: "traefik", Container: "traefik", Ref: "rancher/mirrored-library-traefik:3.6.12"},
	}
	assert.Equal(t, want, got)
}

func TestPodTemplateImages(t *testing.T) {
	workload := func(kind string, specPath []string, containers ...map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"kind": kind}}
		list := make([]any, 0, len(containers))
		for _, c := range containers {
			list = append(list, c)
		}
		require.NoError(t, unstructured.SetNestedSlice(u.Object, list, append(specPath, "containers")...))
		return u
	}
	container := func(name, image string) map[string]any { return map[string]any{"name": name, "image": image} }
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want []Image
	}{
		{
			name: "a Deployment's containers are read from its pod template",
			obj:  workload("Deployment", []string{"spec", "template", "spec"}, container("a", "x:1"), container("b", "y:2")),
			want: []Image{{Container: "a", Ref: "x:1"}, {Container: "b", Ref: "y:2"}},
		},
		{
			name: "a CronJob's containers are read from its job template",
			obj:  workload("CronJob", []string{"spec", "jobTemplate", "spec", "template", "spec"}, container("c", "z:3")),
			want: []Image{{Container: "c", Ref: "z:3"}},
		},
		{
			name: "a bare Pod's containers are read from its spec",
			obj:  workload("Pod", []string{"spec"}, container("p", "p:1")),
			want: []Image{{Container: "p", Ref: "p:1"}},
		},
		{
			name: "a ConfigMap runs no image",
			obj:  workload("ConfigMap", []string{"spec"}, container("p", "p:1")),
		},
		{
			name: "a container without an image is left out",
			obj:  workload("DaemonSet", []string{"spec", "template", "spec"}, map[string]any{"name": "n"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, podTemplateImages(tt.obj))
		})
	}
}
