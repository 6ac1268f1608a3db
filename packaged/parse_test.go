package packaged

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []string // "apiVersion Kind namespace/name"
		wantErr bool
	}{
		{name: "an empty file holds nothing", data: "", want: nil},
		{name: "comments and separators only hold nothing", data: "# a comment\n---\n# another\n---\n", want: nil},
		{
			name: "documents are returned in order and empty ones ignored",
			data: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n---\n# c\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
			want: []string{"v1 ConfigMap x/a", "v1 Secret /b"},
		},
		{
			name: "a List is replaced by its items",
			data: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n",
			want: []string{"v1 ConfigMap /a", "v1 ConfigMap /b"},
		},
		{
			name: "a typed list is replaced by its items",
			data: "apiVersion: v1\nkind: ConfigMapList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n",
			want: []string{"v1 ConfigMap /a"},
		},
		{
			name: "JSON is read as YAML",
			data: `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}`,
			want: []string{"v1 ConfigMap /j"},
		},
		{
			name: "a ClusterCIDR of the K3s docs' group is moved to k3snet's",
			data: "apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\nmetadata: {name: c}\nspec: {perNodeHostBits: 8, ipv4: 10.247.0.0/16}\n",
			want: []string{"networking.x-k8s.io/v1 ClusterCIDR /c"},
		},
		{name: "invalid YAML is an error", data: "apiVersion: v1\nkind: [unclosed\n", wantErr: true},
		{name: "a scalar document is an error", data: "just a string\n", wantErr: true},
		{name: "a document without kind is an error", data: "apiVersion: v1\nmetadata: {name: a}\n", wantErr: true},
		{name: "an object without name is an error", data: "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := parseManifest([]byte(tt.data))
			if tt.wantErr {
				require.ErrorIs(t, err, errParse)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, o := range objs {
				got = append(got, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestGVKAnnotationRoundTrips(t *testing.T) {
	gvks := []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Version: "v1", Kind: "Service"},
		{Group: "helm.cattle.io", Version: "v1", Kind: "HelmChart"},
	}
	s := formatGVKs(gvks)
	assert.Equal(t, "apps/v1, Kind=Deployment;/v1, Kind=Service;helm.cattle.io/v1, Kind=HelmChart", s,
		"the form K3s writes (GroupVersionKind.String joined by ;)")
	assert.Equal(t, gvks, parseGVKs(s))
	assert.Empty(t, parseGVKs(""))
	assert.Equal(t, gvks[:1], parseGVKs("garbage;apps/v1, Kind=Deployment;a/b/c, Kind=X"), "unreadable entries are skipped")
}

func TestUnionGVKsKeepsOrderAndDropsDuplicates(t *testing.T) {
	a := schema.GroupVersionKind{Version: "v1", Kind: "A"}
	b := schema.GroupVersionKind{Version: "v1", Kind: "B"}
	c := schema.GroupVersionKind{Version: "v1", Kind: "C"}
	assert.Equal(t, []schema.GroupVersionKind{b, a, c}, unionGVKs([]schema.GroupVersionKind{b, a}, []schema.GroupVersionKind{a, c, c}))
}
