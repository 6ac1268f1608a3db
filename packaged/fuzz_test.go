package packaged

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
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
