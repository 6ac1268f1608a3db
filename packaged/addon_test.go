package packaged

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestAddonRecord(t *testing.T) {
	addon := func(source, checksum, gvks string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"source": source}}}
		if checksum != "" {
			_ = unstructured.SetNestedField(u.Object, checksum, "spec", "checksum")
		}
		if gvks != "" {
			u.SetAnnotations(map[string]string{annotationGVKs: gvks})
		}
		return u
	}
	tests := []struct {
		name        string
		in          *unstructured.Unstructured
		wantChanged bool
	}{
		{name: "a new Addon gets checksum and kinds", in: addon("/m/a.yaml", "", ""), wantChanged: true},
		{name: "a new checksum is recorded", in: addon("/m/a.yaml", "old", "/v1, Kind=ConfigMap"), wantChanged: true},
		{name: "a moved file updates the source", in: addon("/old/a.yaml", "sum", "/v1, Kind=ConfigMap"), wantChanged: true},
		{name: "the same record writes nothing", in: addon("/m/a.yaml", "sum", "/v1, Kind=ConfigMap"), wantChanged: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			got, changed := addonRecord(tt.in, "/m/a.yaml", "sum", "/v1, Kind=ConfigMap")
			assert.Equal(t, tt.wantChanged, changed)
			assert.Equal(t, before, tt.in, "the input is not mutated")
			assert.Equal(t, "sum", addonChecksum(got))
			assert.Equal(t, "/v1, Kind=ConfigMap", got.GetAnnotations()[annotationGVKs])
		})
	}
}
