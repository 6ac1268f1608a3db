package alphaapi

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// seen is a request as the fake kube-apiserver received it.
type seen struct {
	method, path, query, contentType, accept string
	header                                   http.Header
	body                                     string
}

// fakeAPIServer answers for the stored ClusterCIDRs with canned responses and records what
// it was asked.
type fakeAPIServer struct {
	mu       sync.Mutex
	requests []seen
	respond  func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
		contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept"), header: r.Header.Clone(), body: string(body)})
	f.mu.Unlock()
	f.respond(w, r)
}

func (f *fakeAPIServer) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.requests, "kube-apiserver was not asked")
	return f.requests[len(f.requests)-1]
}

func (f *fakeAPIServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

type testEnv struct {
	url      string
	upstream *fakeAPIServer
	proxy    *http.Client // kube-apiserver's front proxy
	noCert   *http.Client
	strange  *http.Client // a client certificate of another CA
}

// newTestEnv runs a Server over TLS in front of a fake kube-apiserver.
func newTestEnv(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *testEnv {
	t.Helper()
	upstream := &fakeAPIServer{respond: respond}
	api := httptest.NewServer(upstream)
	t.Cleanup(api.Close)
	frontProxyCA := newTestCA(t, "front-proxy-ca")
	srv, err := New(Options{Upstream: &rest.Config{Host: api.URL}, RequestHeaderCA: frontProxyCA.pem,
		RequestHeaderAllowedNames: []string{"system:auth-proxy"}})
	require.NoError(t, err)
	const serverName = "k3snet-clustercidr-v1alpha1.kube-system.svc"
	cert, caPEM, err := ServingCert(serverName)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = srv.TLSConfig(cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	client := func(certs ...tls.Certificate) *http.Client {
		// The serving certificate is valid for the Service's name, as kube-apiserver checks it.
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName, Certificates: certs}}}
	}
	return &testEnv{url: ts.URL, upstream: upstream, proxy: client(frontProxyCA.client(t, "system:auth-proxy")), noCert: client(),
		strange: client(newTestCA(t, "other").client(t, "system:auth-proxy"))}
}

// do sends a request as kube-apiserver's front proxy does for user bob.
func (e *testEnv) do(t *testing.T, client *http.Client, method, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Remote-User", "bob")
	req.Header.Add("X-Remote-Group", "devs")
	req.Header.Add("X-Remote-Group", "system:authenticated")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(data)
}

func writeBody(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

const storedObject = `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a","resourceVersion":"5"},"spec":{"perNodeHostBits":8,"ipv4":"10.247.0.0/16"}}`

func TestOnlyTheFrontProxyIsServed(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { writeBody(w, 200, storedObject) })

	resp, _ := env.do(t, env.noCert, http.MethodGet, resourcePath+"/a", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "headers without the front proxy's certificate name nobody")
	// Go's client offers no certificate the server's CA list does not name; sent anyway, it
	// would fail the handshake. Either way the request is refused.
	resp, _ = env.do(t, env.strange, http.MethodGet, resourcePath+"/a", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a certificate of another CA names nobody")
	assert.Zero(t, env.upstream.count(), "nothing reached kube-apiserver")

	resp, body := env.do(t, env.noCert, http.MethodGet, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)
}

func TestDiscovery(t *testing.T) {
	env := newTestEnv(t, nil)
	resp, body := env.do(t, env.proxy, http.MethodGet, "/apis/networking.k8s.io/v1alpha1", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list metav1.APIResourceList
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	assert.Equal(t, "networking.k8s.io/v1alpha1", list.GroupVersion)
	require.Len(t, list.APIResources, 1)
	r := list.APIResources[0]
	assert.Equal(t, "clustercidrs", r.Name)
	assert.Equal(t, "ClusterCIDR", r.Kind)
	assert.False(t, r.Namespaced)
	assert.ElementsMatch(t, []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}, []string(r.Verbs))

	// kube-apiserver asks /apis for aggregated discovery first; a plain APIGroupList makes it
	// fall back to the document above.
	resp, body = env.do(t, env.proxy, http.MethodGet, "/apis", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `"preferredVersion":{"groupVersion":"networking.k8s.io/v1alpha1"`)

	for _, path := range []string{"/openapi/v2", "/openapi/v3"} {
		resp, body = env.do(t, env.proxy, http.MethodGet, path, "", "")
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, body, `"paths":{}`, "%s: no schema, so kubectl sends JSON merge patches", path)
	}
	assert.Zero(t, env.upstream.count())
}

func TestGetRelaysAsTheUserAndTranslates(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "a warning"`)
		writeBody(w, 200, storedObject)
	})
	req, err := http.NewRequest(http.MethodGet, env.url+resourcePath+"/a?resourceVersion=0", nil)
	require.NoError(t, err)
	req.Header.Set("X-Remote-User", "bob")
	req.Header.Add("X-Remote-Group", "devs")
	req.Header.Set("X-Remote-Extra-Scopes", "s1")
	req.Header.Set("Accept", "application/vnd.kubernetes.protobuf,application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	resp, err := env.proxy.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, strings.Replace(storedObject, "networking.x-k8s.io/v1", "networking.k8s.io/v1alpha1", 1), string(body))
	assert.Equal(t, []string{`299 - "a warning"`}, resp.Header.Values("Warning"))
	got := env.upstream.last(t)
	assert.Equal(t, "/apis/networking.x-k8s.io/v1/clustercidrs/a", got.path)
	assert.Equal(t, "resourceVersion=0", got.query)
	assert.Equal(t, "bob", got.header.Get("Impersonate-User"))
	assert.Equal(t, []string{"devs"}, got.header.Values("Impersonate-Group"))
	assert.Equal(t, "s1", got.header.Get("Impersonate-Extra-Scopes"))
	assert.Empty(t, got.header.Get("X-Remote-User"), "the front-proxy headers stay here")
	assert.Equal(t, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", got.accept, "JSON only: protobuf cannot be rewritten")
}

func TestWritesAreStoredAsV1(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { writeBody(w, 201, storedObject) })
	alpha := `{"apiVersion":"networking.k8s.io/v1alpha1","kind":"ClusterCIDR","metadata":{"name":"a"},"spec":{"perNodeHostBits":8,"ipv4":"10.247.0.0/16"}}`

	resp, body := env.do(t, env.proxy, http.MethodPost, resourcePath+"?fieldManager=kubectl-client-side-apply&fieldValidation=Strict", "application/json", alpha)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Contains(t, body, `"apiVersion":"networking.k8s.io/v1alpha1"`)
	got := env.upstream.last(t)
	assert.Equal(t, http.MethodPost, got.method)
	assert.Equal(t, "/apis/networking.x-k8s.io/v1/clustercidrs", got.path)
	assert.Equal(t, "fieldManager=kubectl-client-side-apply&fieldValidation=Strict", got.query, "field validation is kube-apiserver's")
	assert.Contains(t, got.body, `"apiVersion":"networking.x-k8s.io/v1"`)

	env.do(t, env.proxy, http.MethodPatch, resourcePath+"/a", "application/merge-patch+json", `{"metadata":{"labels":{"team":"blue"}}}`)
	got = env.upstream.last(t)
	assert.Equal(t, http.MethodPatch, got.method)
	assert.Equal(t, "application/merge-patch+json", got.contentType)
	assert.JSONEq(t, `{"metadata":{"labels":{"team":"blue"}}}`, got.body)

	env.do(t, env.proxy, http.MethodPatch, resourcePath+"/a?fieldManager=kubectl", "application/apply-patch+yaml",
		"apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\nmetadata:\n  name: a\n")
	got = env.upstream.last(t)
	assert.Equal(t, "application/apply-patch+yaml", got.contentType)
	assert.JSONEq(t, `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR","metadata":{"name":"a"}}`, got.body)

	env.do(t, env.proxy, http.MethodPut, resourcePath+"/a", "application/yaml", "apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\n")
	got = env.upstream.last(t)
	assert.Equal(t, "application/json", got.contentType, "YAML is relayed as JSON")
	assert.JSONEq(t, `{"apiVersion":"networking.x-k8s.io/v1","kind":"ClusterCIDR"}`, got.body)

	env.do(t, env.proxy, http.MethodDelete, resourcePath+"/a", "application/json", `{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}`)
	got = env.upstream.last(t)
	assert.Equal(t, http.MethodDelete, got.method)
	assert.Equal(t, `{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}`, got.body)
}

func TestErrorsPassThroughNamingV1alpha1(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, 404, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"clustercidrs.networking.x-k8s.io \"a\" not found","reason":"NotFound","details":{"name":"a","group":"networking.x-k8s.io","kind":"clustercidrs"},"code":404}`)
	})
	resp, body := env.do(t, env.proxy, http.MethodGet, resourcePath+"/a", "", "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	var status metav1.Status
	require.NoError(t, json.Unmarshal([]byte(body), &status))
	assert.Equal(t, metav1.StatusReasonNotFound, status.Reason)
	assert.Equal(t, `clustercidrs.networking.k8s.io "a" not found`, status.Message)
	assert.Equal(t, "networking.k8s.io", status.Details.Group)
}

func TestRefusals(t *testing.T) {
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) { writeBody(w, 200, storedObject) })
	for _, tc := range []struct {
		name, method, path, contentType, body string
		code                                  int
		reason                                metav1.StatusReason
	}{
		{"update of the collection", http.MethodPut, resourcePath, "application/json", `{}`, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed},
		{"create of a named object", http.MethodPost, resourcePath + "/a", "application/json", `{}`, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed},
		{"a subresource", http.MethodGet, resourcePath + "/a/status", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"another resource", http.MethodGet, "/apis/networking.k8s.io/v1alpha1/ipaddresses", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"protobuf", http.MethodPost, resourcePath, "application/vnd.kubernetes.protobuf", "x", http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType},
		{"a body over the limit", http.MethodPost, resourcePath, "application/json", `{"a":"` + strings.Repeat("x", maxRequestBody) + `"}`, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge},
		{"a body that is no object", http.MethodPost, resourcePath, "application/json", `[1]`, http.StatusBadRequest, metav1.StatusReasonBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.do(t, env.proxy, tc.method, tc.path, tc.contentType, tc.body)
			assert.Equal(t, tc.code, resp.StatusCode)
			var status metav1.Status
			require.NoError(t, json.Unmarshal([]byte(body), &status), body)
			assert.Equal(t, tc.reason, status.Reason)
		})
	}
	assert.Zero(t, env.upstream.count(), "no refused request reached kube-apiserver")
}

func TestWatchStreamsTranslatedEvents(t *testing.T) {
	release := make(chan struct{})
	env := newTestEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;stream=watch")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"type":"ADDED","object":`+storedObject+"}\n")
		w.(http.Flusher).Flush()
		<-release // the first event must arrive before the watch ends
		_, _ = io.WriteString(w, `{"type":"DELETED","object":`+storedObject+"}\n")
	})
	req, err := http.NewRequest(http.MethodGet, env.url+resourcePath+"?watch=true&resourceVersion=5", nil)
	require.NoError(t, err)
	req.Header.Set("X-Remote-User", "bob")
	resp, err := env.proxy.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json;stream=watch", resp.Header.Get("Content-Type"))
	lines := bufio.NewScanner(resp.Body)
	var events []string
	require.True(t, lines.Scan())
	events = append(events, lines.Text())
	close(release)
	for lines.Scan() {
		events = append(events, lines.Text())
	}
	require.Len(t, events, 2)
	for i, typ := range []string{"ADDED", "DELETED"} {
		var event struct {
			Type   string
			Object map[string]any
		}
		require.NoError(t, json.Unmarshal([]byte(events[i]), &event))
		assert.Equal(t, typ, event.Type)
		assert.Equal(t, "networking.k8s.io/v1alpha1", event.Object["apiVersion"])
	}
	assert.Equal(t, "watch=true&resourceVersion=5", env.upstream.last(t).query)
}
