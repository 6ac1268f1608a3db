package clustercidr

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// dig walks a parsed YAML document along keys (map keys or list indexes as ints).
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "%v: not a map at %q", path, k)
			v, ok = m[k]
			require.True(t, ok, "%v: no key %q", path, k)
		case int:
			l, ok := v.([]any)
			require.True(t, ok, "%v: not a list at %d", path, k)
			require.Less(t, k, len(l), "%v: index %d", path, k)
			v = l[k]
		}
	}
	return v
}

// rulesAt returns the CEL rules of x-kubernetes-validations at path.
func rulesAt(t *testing.T, v any, path ...any) []string {
	t.Helper()
	var out []string
	for _, r := range dig(t, v, append(path, "x-kubernetes-validations")...).([]any) {
		out = append(out, r.(map[string]any)["rule"].(string))
	}
	return out
}

func TestCRDManifest(t *testing.T) {
	var crd map[string]any
	require.NoError(t, yaml.UnmarshalStrict(CRDYAML(), &crd))

	assert.Equal(t, "apiextensions.k8s.io/v1", dig(t, crd, "apiVersion"))
	assert.Equal(t, "CustomResourceDefinition", dig(t, crd, "kind"))
	assert.Equal(t, Resource+"."+Group, dig(t, crd, "metadata", "name"))
	assert.Equal(t, Group, dig(t, crd, "spec", "group"))
	assert.Equal(t, "Cluster", dig(t, crd, "spec", "scope"))
	assert.Equal(t, Kind, dig(t, crd, "spec", "names", "kind"))
	assert.Equal(t, Resource, dig(t, crd, "spec", "names", "plural"))
	assert.Equal(t, "clustercidr", dig(t, crd, "spec", "names", "singular"))
	assert.Equal(t, []any{"cc"}, dig(t, crd, "spec", "names", "shortNames"))

	versions := dig(t, crd, "spec", "versions").([]any)
	require.Len(t, versions, 1)
	v1 := versions[0]
	assert.Equal(t, Version, dig(t, v1, "name"))
	assert.Equal(t, true, dig(t, v1, "served"))
	assert.Equal(t, true, dig(t, v1, "storage"))

	var columns []string
	for _, c := range dig(t, v1, "additionalPrinterColumns").([]any) {
		columns = append(columns, c.(map[string]any)["name"].(string)+"="+c.(map[string]any)["jsonPath"].(string))
	}
	assert.Equal(t, []string{
		"PerNodeHostBits=.spec.perNodeHostBits", "IPv4=.spec.ipv4", "IPv6=.spec.ipv6", "Age=.metadata.creationTimestamp",
	}, columns)

	spec := dig(t, v1, "schema", "openAPIV3Schema", "properties", "spec")
	assert.Equal(t, []any{"perNodeHostBits"}, dig(t, spec, "required"))
	assert.EqualValues(t, minPerNodeHostBits, dig(t, spec, "properties", "perNodeHostBits", "minimum"))
	assert.Equal(t, "int32", dig(t, spec, "properties", "perNodeHostBits", "format"))
	specRules := rulesAt(t, spec)
	assert.Contains(t, specRules, "self == oldSelf", "every spec field is immutable")
	assert.Contains(t, strings.Join(specRules, "\n"), "32 - cidr(self.ipv4).prefixLength()")
	assert.Contains(t, strings.Join(specRules, "\n"), "128 - cidr(self.ipv6).prefixLength()")
	assert.Contains(t, strings.Join(rulesAt(t, spec, "properties", "ipv4"), ""), "cidr(self).ip().family() == 4")
	assert.Contains(t, strings.Join(rulesAt(t, spec, "properties", "ipv6"), ""), "cidr(self).ip().family() == 6")

	terms := dig(t, spec, "properties", "nodeSelector", "properties", "nodeSelectorTerms")
	assert.Equal(t, []any{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"},
		dig(t, terms, "items", "properties", "matchExpressions", "items", "properties", "operator", "enum"))
	assert.Equal(t, []any{"metadata.name"}, dig(t, terms, "items", "properties", "matchFields", "items", "properties", "key", "enum"))

	// The Go type decodes exactly the fields the schema has.
	var schemaFields, goFields []string
	for k := range dig(t, spec, "properties").(map[string]any) {
		schemaFields = append(schemaFields, k)
	}
	st := reflect.TypeFor[ClusterCIDRSpec]()
	for i := range st.NumField() {
		goFields = append(goFields, strings.Split(st.Field(i).Tag.Get("json"), ",")[0])
	}
	slices.Sort(schemaFields)
	slices.Sort(goFields)
	assert.Equal(t, schemaFields, goFields)
}

func TestCRDYAMLReturnsACopy(t *testing.T) {
	b := CRDYAML()
	b[0] = '!'
	assert.NotEqual(t, byte('!'), CRDYAML()[0])
}
