package packaged

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// FuzzParseManifest parses any file content: an errParse naming the document, or objects that
// all have apiVersion, kind and name (server-side apply needs them), none left in the removed
// ClusterCIDR group; written back out as a JSON stream they parse to the same objects.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n---\n# c\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"))
	f.Add([]byte("apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\nmetadata: {name: c}\nspec: {perNodeHostBits: 8, ipv4: 10.0.0.0/16}\n"))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"j\"},\"data\":{\"n\":\"1\"}}"))
	f.Add([]byte("kind: ConfigMap\nmetadata: {}\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := parseManifest(data)
		if err != nil {
			if objs != nil || !errors.Is(err, errParse) {
				t.Fatalf("parse error %v is not an errParse, or comes with objects", err)
			}
			return
		}
		var stream []string
		for _, o := range objs {
			if checkObject(o) != nil {
				t.Fatalf("object %v lacks apiVersion, kind or name", o.Object)
			}
			if o.GetAPIVersion() == clusterCIDRAlphaGroup && o.GetKind() == clusterCIDRKind {
				t.Fatalf("ClusterCIDR %s left in the removed group", o.GetName())
			}
			js, err := o.MarshalJSON()
			if err != nil {
				t.Fatalf("object %s does not encode: %v", o.GetName(), err)
			}
			stream = append(stream, string(js))
		}
		again, err := parseManifest([]byte(strings.Join(stream, "\n---\n")))
		if err != nil || len(again) != len(objs) {
			t.Fatalf("the objects written back as JSON parse to %d objects, %v; want %d", len(again), err, len(objs))
		}
		for i := range objs {
			if !reflect.DeepEqual(objs[i].Object, again[i].Object) {
				t.Fatalf("object %d changed through JSON:\n%v\n%v", i, objs[i].Object, again[i].Object)
			}
		}
		// The kinds annotation reads back what was written, for kinds a REST mapping can have.
		gvks := fileGVKs(objs)
		if back := parseGVKs(formatGVKs(gvks)); validKinds(objs) && !slices.Equal(back, gvks) {
			t.Fatalf("kinds %v read back as %v", gvks, back)
		}
	})
}

// validKinds reports whether every object's kind is a plain identifier and its apiVersion
// has at most one slash, as the kinds the API server serves do.
func validKinds(objs []*unstructured.Unstructured) bool {
	for _, o := range objs {
		if len(validation.IsDNS1035Label(strings.ToLower(o.GetKind()))) > 0 || strings.Count(o.GetAPIVersion(), "/") > 1 ||
			strings.ContainsAny(o.GetAPIVersion(), " ,;=") {
			return false
		}
	}
	return true
}

// FuzzAddonName names any set of manifest paths: a top-level file's name never meets a nested
// file's, the files that keep a name never share it (the rest are refused, each pointing at
// a keeper with the same name, the existing Addon's source winning), and a name the API
// server would refuse is a clear error before any request.
func FuzzAddonName(f *testing.F) {
	f.Add("foo.yaml\nsub/foo.yaml\nfoo.custom.yaml", uint8(0))
	f.Add("a.b/c.yaml\na/b.c.yaml\nmetrics-server/auth-reader.yaml", uint8(1))
	f.Add("example_manifest.yaml\n.hidden.yaml\ncoredns.yaml\ncoredns.v2.yaml", uint8(2))
	f.Add("traefik.yaml\ntraefik.custom.yaml\ntraefik.yaml.skip", uint8(3))
	f.Fuzz(func(t *testing.T, list string, sourcePick uint8) {
		var files []manifestFile
		seen := map[string]bool{}
		for rel := range strings.SplitSeq(list, "\n") {
			// Only what scanDir can return: a relative slash path of real file names.
			parts := strings.Split(rel, "/")
			if rel == "" || seen[rel] || strings.ContainsRune(rel, 0) || slices.ContainsFunc(parts, func(p string) bool {
				return p == "" || p == "." || p == ".."
			}) {
				continue
			}
			seen[rel] = true
			files = append(files, manifestFile{rel: rel, path: "/var/lib/rancher/k3s/server/manifests/" + rel})
		}
		slices.SortFunc(files, func(a, b manifestFile) int { return strings.Compare(a.rel, b.rel) })

		groups := map[string][]string{}
		for _, file := range files {
			name := addonName(file.rel)
			if name != addonName(file.rel) {
				t.Fatal("addonName is not deterministic")
			}
			if strings.Contains(file.rel, "/") != strings.Contains(name, ".") {
				t.Fatalf("%q is named %q: top-level names have no dot, nested ones have one", file.rel, name)
			}
			groups[name] = append(groups[name], file.path)
			classify(file.rel, map[string]bool{name: sourcePick&1 == 0}, map[string]bool{})
			if len(validation.IsDNS1123Subdomain(name)) > 0 {
				// A nil client would panic if reached: the name is refused first.
				_, err := addonClient{}.getOrCreate(context.Background(), name, file.path)
				if err == nil || !strings.Contains(err.Error(), file.path) {
					t.Fatalf("invalid Addon name %q: error %v does not name the file", name, err)
				}
			}
		}
		// The existing Addon's source: none, or one of the group's files.
		source := func(name string) string {
			g := groups[name]
			if sourcePick == 0 || len(g) == 0 {
				return ""
			}
			return g[int(sourcePick)%len(g)]
		}
		refused := nameConflicts(files, source)
		keepers := map[string]string{}
		for _, file := range files {
			name := addonName(file.rel)
			keeper, isRefused := refused[file.path]
			if !isRefused {
				if other, dup := keepers[name]; dup {
					t.Fatalf("%s and %s both keep Addon %q", other, file.path, name)
				}
				keepers[name] = file.path
				continue
			}
			if _, keeperRefused := refused[keeper]; keeperRefused || keeper == file.path || !slices.Contains(groups[name], keeper) {
				t.Fatalf("%s is refused in favour of %q, which is not a kept file of Addon %q", file.path, keeper, name)
			}
		}
		for name, g := range groups {
			if keepers[name] == "" {
				t.Fatalf("no file keeps Addon %q of %v", name, g)
			}
			if src := source(name); src != "" && keepers[name] != src {
				t.Fatalf("Addon %q: %s keeps it, not its source %s", name, keepers[name], src)
			}
		}
	})
}

// FuzzMergeValues merges any HelmChart and HelmChartConfig values: an error naming the layer,
// or values that encode to JSON (the config hash), are the same on a second merge, leave the
// inputs untouched, and give HelmChartConfig's plain values precedence over HelmChart's.
func FuzzMergeValues(f *testing.F) {
	f.Add("image:\n  tag: v1\nports: [80]\n", "a: {b: 1}", "image:\n  tag: v2\n", "secret: s", "image.tag", "v3", int32(0), uint8(0))
	f.Add("list:\n- name: x\n  v: 1\n", "", "", "", "list[0].v", "2", int32(0), uint8(0))
	f.Add("", "list:\n- {name: x}", "x: null", "", "list[0].name", "", int32(7), uint8(1))
	f.Add("a: [", "", "", "", "a.b", "c,d", int32(0), uint8(0))
	f.Add("", "", "", "", "a[70000]", "x", int32(0), uint8(0))
	f.Add("", "", "", "", "a.b", "TRUE", int32(0), uint8(0))
	f.Fuzz(func(t *testing.T, chartContent, chartValues, configContent, secret, setKey, setStr string, setInt int32, flags uint8) {
		var chartMap map[string]any
		if yaml.Unmarshal([]byte(chartValues), &chartMap) != nil {
			chartMap = nil // spec.values is an object in the API; anything else cannot be stored
		}
		l := valuesLayers{chartValuesContent: chartContent, chartValues: chartMap, chartSecrets: []string{secret},
			configValuesContent: configContent}
		if setKey != "" {
			v := intstr.FromString(setStr)
			if flags&1 != 0 {
				v = intstr.FromInt32(setInt)
			}
			l.set = map[string]intstr.IntOrString{setKey: v}
		}
		chartBefore := deepCopyJSON(t, chartMap)
		out, err := mergeValues(l)
		if !reflect.DeepEqual(chartBefore, chartMap) {
			t.Fatalf("mergeValues modified HelmChart spec.values: %v became %v", chartBefore, chartMap)
		}
		if err != nil {
			if out != nil || !strings.Contains(err.Error(), "parsing HelmChart") && !strings.Contains(err.Error(), "parsing HelmChartConfig") &&
				!strings.Contains(err.Error(), "applying set") {
				t.Fatalf("merge error %v does not name its layer", err)
			}
			return
		}
		hash, err := configHash("chart", out, "ns")
		if err != nil {
			t.Fatalf("merged values do not encode: %v", err)
		}
		again, err := mergeValues(l)
		if err != nil {
			t.Fatal(err)
		}
		if hash2, _ := configHash("chart", again, "ns"); hash2 != hash || len(hash) != 63 {
			t.Fatalf("a second merge hashes to %s, not %s", hash2, hash)
		}
		if setKey != "" {
			return
		}
		var config map[string]any
		if yaml.Unmarshal([]byte(configContent), &config) != nil {
			t.Fatal("HelmChartConfig valuesContent merged although it does not parse")
		}
		for k, v := range config {
			if _, isMap := v.(map[string]any); !isMap && !reflect.DeepEqual(out[k], v) {
				t.Fatalf("key %q is %v, want HelmChartConfig's %v", k, out[k], v)
			}
		}
	})
}

// deepCopyJSON copies m through JSON, which is what an API object's values are.
func deepCopyJSON(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	if m == nil {
		return nil
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Skip("values that are not JSON cannot come from the API")
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
