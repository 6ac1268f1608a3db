package alphaapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestToStored(t *testing.T) {
	for _, tc := range []struct {
		name, mediaType, body, want string
	}{
		{
			name:      "an object's apiVersion becomes the stored one",
			mediaType: "application/json",
			body:      `{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR","metadata":{"name":"a"},"spec":{"perNodeHostBits":8,"ipv4":"10.247.0.0/16"}}`,
			want:      `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a"},"spec":{"perNodeHostBits":8,"ipv4":"10.247.0.0/16"}}`,
		},
		{
			name:      "a merge patch without apiVersion is left alone",
			mediaType: "application/merge-patch+json",
			body:      `{"metadata":{"labels":{"team":"blue"}}}`,
			want:      `{"metadata":{"labels":{"team":"blue"}}}`,
		},
		{
			name:      "another apiVersion is left for kube-apiserver to judge",
			mediaType: "application/json",
			body:      `{"apiVersion":"v1","kind":"ClusterCIDR"}`,
			want:      `{"apiVersion":"v1","kind":"ClusterCIDR"}`,
		},
		{
			name:      "server-side apply YAML becomes JSON with the stored apiVersion",
			mediaType: "application/apply-patch+yaml",
			body:      "apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\nmetadata:\n  name: a\nspec:\n  perNodeHostBits: 8\n",
			want:      `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a"},"spec":{"perNodeHostBits":8}}`,
		},
		{
			name:      "a JSON patch setting apiVersion",
			mediaType: "application/json-patch+json",
			body:      `[{"op":"replace","path":"/apiVersion","value":"networking.k8s.io/v1alpha1"},{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]`,
			want:      `[{"op":"replace","path":"/apiVersion","value":"networking.x-k8s.io/v1"},{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]`,
		},
		{
			name:      "large integers keep every digit",
			mediaType: "application/json",
			body:      `{"apiVersion":"networking.k8s.io/v1alpha1","metadata":{"generation":9007199254740993}}`,
			want:      `{"apiVersion":"networking.x-k8s.io/v1","metadata":{"generation":9007199254740993}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := requestToStored([]byte(tc.body), tc.mediaType)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
			if tc.name == "large integers keep every digit" {
				assert.Contains(t, string(got), "9007199254740993")
			}
		})
	}
}

func TestRequestToStoredRejectsWhatIsNoObject(t *testing.T) {
	_, err := requestToStored([]byte(`[1,2]`), "application/json")
	assert.Error(t, err)
	_, err = requestToStored([]byte("a: [b"), "application/yaml")
	assert.Error(t, err)
}

func TestResponseFromStored(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{
			name: "an object",
			body: `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a","managedFields":[{"apiVersion":"networking.x-k8s.io/v1","manager":"kubectl"}]}}`,
			// managedFields name the version their field sets were recorded in: the stored one.
			want: `{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR","metadata":{"name":"a","managedFields":[{"apiVersion":"networking.x-k8s.io/v1","manager":"kubectl"}]}}`,
		},
		{
			name: "a list and its items",
			body: `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDRList","metadata":{"resourceVersion":"7"},"items":[{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a"}}]}`,
			want: `{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDRList","metadata":{"resourceVersion":"7"},"items":[{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR","metadata":{"name":"a"}}]}`,
		},
		{
			name: "an empty list",
			body: `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDRList","items":null}`,
			want: `{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDRList","items":null}`,
		},
		{
			name: "a watch event",
			body: `{"type":"ADDED","object":{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a"}}}`,
			want: `{"type":"ADDED","object":{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR","metadata":{"name":"a"}}}`,
		},
		{
			name: "a Table keeps its own apiVersion, its rows' objects get ours",
			body: `{"apiVersion":"meta.k8s.io/v1","kind":"Table","rows":[{"cells":["a"],"object":{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR"}},{"cells":["b"],"object":{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata"}}]}`,
			want: `{"apiVersion":"meta.k8s.io/v1","kind":"Table","rows":[{"cells":["a"],"object":{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR"}},{"cells":["b"],"object":{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata"}}]}`,
		},
		{
			name: "a NotFound names the served group",
			body: `{"apiVersion":"v1","kind":"Status","status":"Failure","message":"clustercidrs.networking.x-k8s.io \"a\" not found","reason":"NotFound","details":{"name":"a","group":"networking.x-k8s.io","kind":"clustercidrs"},"code":404}`,
			want: `{"apiVersion":"v1","kind":"Status","status":"Failure","message":"clustercidrs.networking.k8s.io \"a\" not found","reason":"NotFound","details":{"name":"a","group":"networking.k8s.io","kind":"clustercidrs"},"code":404}`,
		},
		{
			name: "an Invalid names the served group, its causes stay",
			body: `{"kind":"Status","apiVersion":"v1","message":"ClusterCIDR.networking.x-k8s.io \"a\" is invalid: spec: Invalid value: \"object\": spec is immutable","reason":"Invalid","details":{"name":"a","group":"networking.x-k8s.io","kind":"ClusterCIDR","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"object\": spec is immutable","field":"spec"}]},"code":422}`,
			want: `{"kind":"Status","apiVersion":"v1","message":"ClusterCIDR.networking.k8s.io \"a\" is invalid: spec: Invalid value: \"object\": spec is immutable","reason":"Invalid","details":{"name":"a","group":"networking.k8s.io","kind":"ClusterCIDR","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"object\": spec is immutable","field":"spec"}]},"code":422}`,
		},
		{
			name: "a Forbidden still names the RBAC group the user lacks",
			body: `{"kind":"Status","apiVersion":"v1","message":"clustercidrs.networking.x-k8s.io \"a\" is forbidden: User \"bob\" cannot get resource \"clustercidrs\" in API group \"networking.x-k8s.io\" at the cluster scope","reason":"Forbidden","details":{"name":"a","group":"networking.x-k8s.io","kind":"clustercidrs"},"code":403}`,
			want: `{"kind":"Status","apiVersion":"v1","message":"clustercidrs.networking.k8s.io \"a\" is forbidden: User \"bob\" cannot get resource \"clustercidrs\" in API group \"networking.x-k8s.io\" at the cluster scope","reason":"Forbidden","details":{"name":"a","group":"networking.k8s.io","kind":"clustercidrs"},"code":403}`,
		},
		{
			name: "a watch ERROR event's Status",
			body: `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","message":"clustercidrs.networking.x-k8s.io gone","code":410}}`,
			want: `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","message":"clustercidrs.networking.k8s.io gone","code":410}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := responseFromStored([]byte(tc.body))
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}
