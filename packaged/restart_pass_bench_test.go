package packaged

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// BenchmarkRestartPass is the deploy controller's part of BenchmarkRestart without the API
// server, so that 100× runs on any machine: the first pass of a new Controller over
// BenchmarkRestart's files times 1, 10 and 100 (up to 2,000 manifests and 500 HelmCharts),
// every Addon already recording its file's checksum, read through a fake client. It measures
// the controller's own work (scan, one Addon list, read and hash each file) and fails on any
// write.
func BenchmarkRestartPass(b *testing.B) {
	for _, scale := range []int{1, 10, 100} {
		w := restartWorkload{manifests: 20 * scale, charts: 5 * scale}
		b.Run(fmt.Sprintf("x%d/files=%d", scale, w.manifests+w.charts), func(b *testing.B) {
			dir := b.TempDir()
			w.write(b, dir, "restart", "bench")
			addons := appliedAddons(b, dir)
			var dyn *dynamicfake.FakeDynamicClient
			for b.Loop() {
				b.StopTimer()
				dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
					map[schema.GroupVersionResource]string{addonResource(): "AddonList"}, addons...)
				c, err := New(fake.NewClientset(), Options{ManifestsDir: dir, Dynamic: dyn})
				require.NoError(b, err)
				b.StartTimer()
				_, err = c.pass(quietContext(b.Context()))
				require.NoError(b, err)
			}
			b.ReportMetric(float64(len(dyn.Actions())), "requests/pass")
			for _, a := range dyn.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" {
					b.Fatalf("a restart pass wrote: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

// appliedAddons returns, for every file of dir, the Addon a successful apply left: its
// source and its checksum.
func appliedAddons(tb testing.TB, dir string) []runtime.Object {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(tb, err)
	out := make([]runtime.Object, 0, len(entries))
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		require.NoError(tb, err)
		sum := sha256.Sum256(data)
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": addonAPIVersion, "kind": addonKind,
			"metadata": map[string]any{"name": addonName(e.Name()), "namespace": addonNamespace},
			"spec":     map[string]any{"source": p, "checksum": hex.EncodeToString(sum[:])},
		}})
	}
	return out
}
