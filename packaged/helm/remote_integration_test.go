package helm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// tinyChart packs chart x at version 0.1.0: one ConfigMap <release>-x whose data are the
// values greeting and ignored.
func tinyChart(t *testing.T) []byte {
	t.Helper()
	fsys := fstest.MapFS{
		"x/Chart.yaml":  {Data: []byte("apiVersion: v2\nname: x\nversion: 0.1.0\n")},
		"x/values.yaml": {Data: []byte("greeting: hello\nignored: default\n")},
		"x/templates/configmap.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-x\n" +
			"data:\n  greeting: {{ .Values.greeting | quote }}\n  ignored: {{ .Values.ignored | quote }}\n")},
	}
	data, err := helmchart.Archive(fsys, "x")
	require.NoError(t, err)
	return data
}

// chartRepo is a chart repository on loopback serving tinyChart as x 0.1.0, beside an
// older x 0.0.9 whose archive is missing (so picking the wrong version fails).
type chartRepo struct {
	url string
	// user and password, when set, are required on every request (basic auth).
	user, password string
	// down makes the server drop every connection without an answer.
	down atomic.Bool
	// archiveGets counts downloads of the archive.
	archiveGets atomic.Int64
	// caPEM is the server's certificate when it serves HTTPS.
	caPEM string
}

// newChartRepo starts a repository with start ((*httptest.Server).Start or StartTLS); it
// stops when the test ends.
func newChartRepo(t *testing.T, user, password string, start func(*httptest.Server)) *chartRepo {
	t.Helper()
	r := &chartRepo{user: user, password: password}
	archive := tinyChart(t)
	idx := repo.NewIndexFile()
	require.NoError(t, idx.MustAdd(&chart.Metadata{APIVersion: "v2", Name: "x", Version: "0.1.0"}, "x-0.1.0.tgz", "", sha256Hex(archive)))
	require.NoError(t, idx.MustAdd(&chart.Metadata{APIVersion: "v2", Name: "x", Version: "0.0.9"}, "x-0.0.9.tgz", "", "00"))
	index, err := yaml.Marshal(idx)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /index.yaml", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(index) })
	mux.HandleFunc("GET /x-0.1.0.tgz", func(w http.ResponseWriter, _ *http.Request) {
		r.archiveGets.Add(1)
		_, _ = w.Write(archive)
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			panic(http.ErrAbortHandler) // closes the connection: the client sees no answer
		}
		if u, p, ok := req.BasicAuth(); r.user != "" && (!ok || u != r.user || p != r.password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, req)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose are not news
	start(srv)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	if cert := srv.Certificate(); cert != nil {
		r.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	return r
}

// ociRegistry is an OCI registry on loopback holding tinyChart as charts/x:0.1.0, the
// manifest, config and layer the way `helm push` stores them. It requires basic auth.
type ociRegistry struct {
	host           string
	user, password string
}

// newOCIRegistry starts a registry; it stops when the test ends.
func newOCIRegistry(t *testing.T, user, password string) *ociRegistry {
	t.Helper()
	r := &ociRegistry{user: user, password: password}
	archive := tinyChart(t)
	config := []byte(`{"apiVersion":"v2","name":"x","version":"0.1.0"}`)
	digest := func(b []byte) string { return "sha256:" + sha256Hex(b) }
	descriptor := func(mediaType string, b []byte) map[string]any {
		return map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestType,
		"config":        descriptor(registry.ConfigMediaType, config),
		"layers":        []any{descriptor(registry.ChartLayerMediaType, archive)},
	})
	require.NoError(t, err)
	blobs := map[string][]byte{digest(config): config, digest(archive): archive}
	serve := func(w http.ResponseWriter, req *http.Request, mediaType string, body []byte) {
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Docker-Content-Digest", digest(body))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if req.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/{$}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /v2/charts/x/tags/list", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"name":"charts/x","tags":["0.1.0"]}`))
	})
	mux.HandleFunc("GET /v2/charts/x/manifests/{ref}", func(w http.ResponseWriter, req *http.Request) {
		if ref := req.PathValue("ref"); ref != "0.1.0" && ref != digest(manifest) {
			http.NotFound(w, req)
			return
		}
		serve(w, req, ociManifestType, manifest)
	})
	mux.HandleFunc("GET /v2/charts/x/blobs/{digest}", func(w http.ResponseWriter, req *http.Request) {
		blob, ok := blobs[req.PathValue("digest")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		serve(w, req, "application/octet-stream", blob)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// ociManifestType is the media type of an OCI image manifest.
const ociManifestType = "application/vnd.oci.image.manifest.v1+json"

// helmEnv is a Controller limited to one test namespace, so it never competes with
// another test's controller.
type helmEnv struct {
	c    *testcluster.Cluster
	ns   string
	ctrl *Controller
	dyn  dynamic.Interface
	// static is the controller's StaticDir.
	static string
}

// startHelmEnv installs the CRDs, makes a namespace and starts a controller in it. At the
// end it drops the finalizers of the namespace's HelmCharts, which the stopped controller
// can no longer release, so the namespace can go.
func startHelmEnv(t *testing.T, c *testcluster.Cluster) *helmEnv {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	ns := c.Namespace(t)
	client, err := kubernetes.NewForConfig(c.Config)
	require.NoError(t, err)
	static := t.TempDir()
	ctrl, err := New(client, Options{Config: c.Config, Namespace: ns, StaticDir: static})
	require.NoError(t, err)
	require.NoError(t, ctrl.Start(testContext(t), nil))
	e := &helmEnv{c: c, ns: ns, ctrl: ctrl, dyn: dyn, static: static}
	t.Cleanup(func() {
		res := e.dyn.Resource(HelmChartResource()).Namespace(ns)
		list, err := res.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, hc := range list.Items {
			_, _ = res.Patch(context.Background(), hc.GetName(), types.MergePatchType,
				[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	})
	return e
}

// createChart creates HelmChart name with spec in the test namespace.
func (e *helmEnv) createChart(t *testing.T, name string, spec map[string]any) {
	t.Helper()
	hc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": name, "namespace": e.ns},
		"spec":     spec,
	}}
	_, err := e.dyn.Resource(HelmChartResource()).Namespace(e.ns).Create(t.Context(), hc, metav1.CreateOptions{})
	require.NoError(t, err)
}

// putSecret creates or replaces Secret name with data.
func (e *helmEnv) putSecret(t *testing.T, name string, typ corev1.SecretType, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Type: typ, StringData: data}
	secrets := e.c.Client.CoreV1().Secrets(e.ns)
	_, err := secrets.Create(t.Context(), s, metav1.CreateOptions{})
	if err == nil {
		return
	}
	old, getErr := secrets.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, getErr, "creating Secret %s: %v", name, err)
	s.ResourceVersion = old.ResourceVersion
	_, err = secrets.Update(t.Context(), s, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// waitValues waits until ConfigMap <release>-x holds want.
func (e *helmEnv) waitValues(t *testing.T, release string, want map[string]string) {
	t.Helper()
	var got map[string]string
	err := e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		cm, err := e.c.Client.CoreV1().ConfigMaps(e.ns).Get(ctx, release+"-x", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = cm.Data
		for k, v := range want {
			if cm.Data[k] != v {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "ConfigMap %s-x: want %v, last seen %v", release, want, got)
}

// waitCondition waits until HelmChart name's Failed condition is "<status>/<reason>".
func (e *helmEnv) waitCondition(t *testing.T, name, want string) {
	t.Helper()
	var got string
	err := e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		hc, err := e.dyn.Resource(HelmChartResource()).Namespace(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = failedCondition(hc)
		return got == want, nil
	})
	require.NoError(t, err, "HelmChart %s condition Failed: want %s, last seen %s", name, want, got)
}

// waitWarning waits for a Warning Event with reason on HelmChart name and returns its message.
func (e *helmEnv) waitWarning(t *testing.T, name, reason string) string {
	t.Helper()
	var msg string
	err := e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		events, err := e.c.Client.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": name, "reason": reason, "type": corev1.EventTypeWarning}.String()})
		if err != nil || len(events.Items) == 0 {
			return false, err
		}
		msg = events.Items[0].Message
		return true, nil
	})
	require.NoError(t, err, "Warning %s on HelmChart %s", reason, name)
	return msg
}

// revisions lists release name's records in the test namespace as "<version>/<status>".
func (e *helmEnv) revisions(t *testing.T, name string) []string {
	t.Helper()
	out, err := revisionsIn(t.Context(), e.c, e.ns, name)
	require.NoError(t, err)
	return out
}

// waitRevisions waits until release name's records are want: no Helm operation in flight.
func (e *helmEnv) waitRevisions(t *testing.T, name string, want ...string) {
	t.Helper()
	var got []string
	err := e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		revs, err := revisionsIn(ctx, e.c, e.ns, name)
		got = revs
		return slices.Equal(revs, want), err
	})
	require.NoError(t, err, "release %s: want %v, last seen %v", name, want, got)
}

func TestHelmChartsFromRepositoriesAndURLs(t *testing.T) {
	c := cluster.Get(t)
	e := startHelmEnv(t, c)
	charts := newChartRepo(t, "", "", (*httptest.Server).Start)

	t.Run("a chart named in a repository's index installs at the version asked for", func(t *testing.T) {
		e.createChart(t, "fromrepo", map[string]any{"repo": charts.url, "chart": "x", "version": "0.1.0"})
		e.waitValues(t, "fromrepo", map[string]string{"greeting": "hello"})
		e.waitCondition(t, "fromrepo", "False/Deployed")
	})

	t.Run("a re-sync finds the archive in the cache", func(t *testing.T) {
		e.waitRevisions(t, "fromrepo", "1/deployed")
		before := charts.archiveGets.Load()
		require.NoError(t, e.ctrl.syncHelmChart(testContext(t), cache.ObjectName{Namespace: e.ns, Name: "fromrepo"}))
		assert.Equal(t, before, charts.archiveGets.Load(), "no second download")
		assert.Equal(t, []string{"1/deployed"}, e.revisions(t, "fromrepo"), "no upgrade")
	})

	t.Run("a chart given as the URL of its archive installs", func(t *testing.T) {
		e.createChart(t, "fromurl", map[string]any{"chart": charts.url + "/x-0.1.0.tgz"})
		e.waitValues(t, "fromurl", map[string]string{"greeting": "hello"})
	})

	t.Run("a chart of the static directory installs, named as K3s's own manifests name theirs", func(t *testing.T) {
		require.NoError(t, os.MkdirAll(filepath.Join(e.static, "charts"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(e.static, "charts", "x-0.1.0.tgz"), tinyChart(t), 0o644))
		e.createChart(t, "fromstatic", map[string]any{"chart": "https://%{KUBERNETES_API}%/static/charts/x-0.1.0.tgz"})
		e.waitValues(t, "fromstatic", map[string]string{"greeting": "hello"})
		e.waitCondition(t, "fromstatic", "False/Deployed")

		// A file staged after its HelmChart: the download fails, and the retry installs it.
		e.createChart(t, "latestatic", map[string]any{"chart": "https://%{KUBERNETES_API}%/static/charts/late-0.1.0.tgz"})
		e.waitCondition(t, "latestatic", "True/"+ReasonChartDownloadFailed)
		assert.Contains(t, e.waitWarning(t, "latestatic", ReasonChartDownloadFailed), "static/charts/late-0.1.0.tgz")
		require.NoError(t, os.WriteFile(filepath.Join(e.static, "charts", "late-0.1.0.tgz"), tinyChart(t), 0o644))
		e.waitValues(t, "latestatic", map[string]string{"greeting": "hello"})
	})

	t.Run("an OCI chart is pulled with the credentials of dockerRegistrySecret, over plain HTTP", func(t *testing.T) {
		reg := newOCIRegistry(t, "bob", "pw")
		e.putSecret(t, "regcred", corev1.SecretTypeDockerConfigJson, map[string]string{
			corev1.DockerConfigJsonKey: `{"auths":{"` + reg.host + `":{"username":"bob","password":"pw"}}}`})
		// No version: the newest tag, as the helm CLI picks it.
		e.createChart(t, "fromoci", map[string]any{"chart": "oci://" + reg.host + "/charts/x", "plainHTTP": true,
			"dockerRegistrySecret": map[string]any{"name": "regcred"}})
		e.waitValues(t, "fromoci", map[string]string{"greeting": "hello"})
		e.waitCondition(t, "fromoci", "False/Deployed")
	})

	t.Run("a repository behind basic auth is read with authSecret, once the Secret exists", func(t *testing.T) {
		private := newChartRepo(t, "alice", "s3cret", (*httptest.Server).Start)
		e.createChart(t, "withauth", map[string]any{"repo": private.url, "chart": "x", "authSecret": map[string]any{"name": "repo-auth"}})
		e.waitCondition(t, "withauth", "True/"+ReasonChartDownloadFailed)
		assert.Contains(t, e.waitWarning(t, "withauth", ReasonChartDownloadFailed), "repo-auth")
		// The Secret watch re-syncs the chart when its authSecret appears.
		e.putSecret(t, "repo-auth", corev1.SecretTypeBasicAuth, map[string]string{"username": "alice", "password": "s3cret"})
		e.waitValues(t, "withauth", map[string]string{"greeting": "hello"})
		e.waitCondition(t, "withauth", "False/Deployed")
	})

	t.Run("an HTTPS repository is trusted through repoCA, and only then", func(t *testing.T) {
		secure := newChartRepo(t, "", "", (*httptest.Server).StartTLS)
		e.createChart(t, "withca", map[string]any{"repo": secure.url, "chart": "x"})
		e.waitCondition(t, "withca", "True/"+ReasonChartDownloadFailed)
		assert.Contains(t, e.waitWarning(t, "withca", ReasonChartDownloadFailed), "certificate")
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"repoCA": secure.caPEM}})
		require.NoError(t, err)
		_, err = e.dyn.Resource(HelmChartResource()).Namespace(e.ns).Patch(t.Context(), "withca", types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
		e.waitValues(t, "withca", map[string]string{"greeting": "hello"})
		// insecureSkipTLSVerify trusts any certificate instead.
		e.createChart(t, "insecure", map[string]any{"repo": secure.url, "chart": "x", "insecureSkipTLSVerify": true})
		e.waitValues(t, "insecure", map[string]string{"greeting": "hello"})
	})

	t.Run("an unreachable repository fails with an Event and installs once it answers", func(t *testing.T) {
		flaky := newChartRepo(t, "", "", (*httptest.Server).Start)
		flaky.down.Store(true)
		e.createChart(t, "unreachable", map[string]any{"repo": flaky.url, "chart": "x", "version": "0.1.0"})
		e.waitCondition(t, "unreachable", "True/"+ReasonChartDownloadFailed)
		assert.Contains(t, e.waitWarning(t, "unreachable", ReasonChartDownloadFailed), flaky.url)
		flaky.down.Store(false) // nothing else changes: the retry with backoff installs it
		e.waitValues(t, "unreachable", map[string]string{"greeting": "hello"})
		e.waitCondition(t, "unreachable", "False/Deployed")
	})

	t.Run("credentials written into chart and repo URLs reach neither status nor Events", func(t *testing.T) {
		host := strings.TrimPrefix(charts.url, "http://")
		e.createChart(t, "urlcreds", map[string]any{"chart": "http://alice:s3cr3t@" + host + "/missing-0.1.0.tgz"})
		e.createChart(t, "repocreds", map[string]any{"repo": "http://alice:s3cr3t@" + host + "/nowhere", "chart": "x"})
		for _, name := range []string{"urlcreds", "repocreds"} {
			e.waitCondition(t, name, "True/"+ReasonChartDownloadFailed)
			hc, err := e.dyn.Resource(HelmChartResource()).Namespace(e.ns).Get(t.Context(), name, metav1.GetOptions{})
			require.NoError(t, err)
			status, err := json.Marshal(hc.Object["status"])
			require.NoError(t, err)
			assert.NotContains(t, string(status), "s3cr3t", name)
			assert.Contains(t, string(status), "alice:xxxxx@", name)
			assert.NotContains(t, e.waitWarning(t, name, ReasonChartDownloadFailed), "s3cr3t", name)
		}
	})

	t.Run("a chart the repository does not have fails until the HelmChart is fixed", func(t *testing.T) {
		e.createChart(t, "missing", map[string]any{"repo": charts.url, "chart": "x", "version": "9.9.9"})
		e.waitCondition(t, "missing", "True/"+ReasonChartDownloadFailed)
		_, err := e.dyn.Resource(HelmChartResource()).Namespace(e.ns).Patch(t.Context(), "missing", types.MergePatchType,
			[]byte(`{"spec":{"version":"0.1.x"}}`), metav1.PatchOptions{})
		require.NoError(t, err)
		e.waitValues(t, "missing", map[string]string{"greeting": "hello"})
	})
}

func TestHelmChartValuesSecretsAreWatched(t *testing.T) {
	c := cluster.Get(t)
	e := startHelmEnv(t, c)
	content := base64.StdEncoding.EncodeToString(tinyChart(t))
	e.putSecret(t, "watched", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "greeting: one\n"})
	e.putSecret(t, "ignored", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "ignored: one\n"})
	e.putSecret(t, "barrier", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "greeting: b1\n"})
	e.createChart(t, "web", map[string]any{"chartContent": content, "valuesSecrets": []any{
		map[string]any{"name": "watched", "keys": []any{"values.yaml"}},
		map[string]any{"name": "ignored", "keys": []any{"values.yaml"}, "ignoreUpdates": true},
	}})
	e.createChart(t, "other", map[string]any{"chartContent": content, "valuesSecrets": []any{
		map[string]any{"name": "barrier", "keys": []any{"values.yaml"}},
	}})
	e.waitValues(t, "web", map[string]string{"greeting": "one", "ignored": "one"})
	e.waitValues(t, "other", map[string]string{"greeting": "b1"})

	t.Run("changing a values Secret upgrades the release", func(t *testing.T) {
		e.putSecret(t, "watched", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "greeting: two\n"})
		e.waitValues(t, "web", map[string]string{"greeting": "two", "ignored": "one"})
		e.waitRevisions(t, "web", "1/superseded", "2/deployed")
	})

	t.Run("changing a values Secret with ignoreUpdates does not", func(t *testing.T) {
		e.putSecret(t, "ignored", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "ignored: two\n"})
		// A barrier instead of a sleep: the Secret informer delivers events in order and the
		// one worker takes keys in order, so once a later change to another chart's Secret
		// is deployed, any sync the first change caused has finished.
		e.putSecret(t, "barrier", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "greeting: b2\n"})
		e.waitValues(t, "other", map[string]string{"greeting": "b2"})
		e.waitRevisions(t, "other", "1/superseded", "2/deployed")
		e.waitValues(t, "web", map[string]string{"greeting": "two", "ignored": "one"})
		assert.Equal(t, []string{"1/superseded", "2/deployed"}, e.revisions(t, "web"), "no upgrade")
	})

	t.Run("a restart does not deploy the ignored change either", func(t *testing.T) {
		require.NoError(t, e.ctrl.syncHelmChart(testContext(t), cache.ObjectName{Namespace: e.ns, Name: "web"}))
		assert.Equal(t, []string{"1/superseded", "2/deployed"}, e.revisions(t, "web"), "configHash leaves ignoreUpdates Secrets out")
	})

	t.Run("the next change of the chart deploys the ignored Secret's current contents", func(t *testing.T) {
		e.putSecret(t, "watched", corev1.SecretTypeOpaque, map[string]string{"values.yaml": "greeting: three\n"})
		e.waitValues(t, "web", map[string]string{"greeting": "three", "ignored": "two"})
	})

	t.Run("a HelmChartConfig's values Secret is watched too", func(t *testing.T) {
		e.putSecret(t, "config-values", corev1.SecretTypeOpaque, map[string]string{"v.yaml": "greeting: from-config\n"})
		cfg := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
			"metadata": map[string]any{"name": "other", "namespace": e.ns},
			"spec":     map[string]any{"valuesSecrets": []any{map[string]any{"name": "config-values", "keys": []any{"v.yaml"}}}},
		}}
		_, err := e.dyn.Resource(HelmChartConfigResource()).Namespace(e.ns).Create(t.Context(), cfg, metav1.CreateOptions{})
		require.NoError(t, err)
		e.waitValues(t, "other", map[string]string{"greeting": "from-config"})
		e.putSecret(t, "config-values", corev1.SecretTypeOpaque, map[string]string{"v.yaml": "greeting: changed\n"})
		e.waitValues(t, "other", map[string]string{"greeting": "changed"})
	})
}

// failedCondition returns "status/reason" of hc's Failed condition, or "" without one.
func failedCondition(hc *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(hc.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == ConditionFailed {
			return fmt.Sprintf("%v/%v", m["status"], m["reason"])
		}
	}
	return ""
}

// revisionsIn lists the revisions of release ns/name as "<version>/<status>", sorted.
func revisionsIn(ctx context.Context, c *testcluster.Cluster, ns, name string) ([]string, error) {
	list, err := c.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Labels["version"]+"/"+s.Labels["status"])
	}
	slices.Sort(out)
	return out, nil
}
