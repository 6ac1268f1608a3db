package packaged

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// apiRequest is what one API request did, in RBAC's terms: the verb (get, list, watch,
// create, update, patch, delete; "discovery" for the API's own description) and the
// resource, with its subresource ("helmcharts/status").
type apiRequest struct {
	verb, resource string
}

func (r apiRequest) String() string { return r.verb + " " + r.resource }

// write reports whether the request changes something.
func (r apiRequest) write() bool {
	switch r.verb {
	case "get", "list", "watch", "discovery":
		return false
	}
	return true
}

// classifyRequest names a request by its method and URL, as the API server's request info
// does: /api/v1/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]] and the same under
// /apis/<group>/<version>; a GET of a collection is a list, or a watch with watch=true.
// Anything else (/api, /apis/<group>/<version>, /openapi/v3, /version) is discovery.
func classifyRequest(method, path string, watch bool) apiRequest {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return apiRequest{verb: "discovery"}
	}
	// namespaces/<ns>/<resource>... is namespaced; namespaces[/<name>] is the Namespace API.
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	resource := parts[0]
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	named := len(parts) >= 2
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watch:
			return apiRequest{"watch", resource}
		case named:
			return apiRequest{"get", resource}
		}
		return apiRequest{"list", resource}
	case http.MethodPost:
		return apiRequest{"create", resource}
	case http.MethodPut:
		return apiRequest{"update", resource}
	case http.MethodPatch:
		return apiRequest{"patch", resource}
	case http.MethodDelete:
		if named {
			return apiRequest{"delete", resource}
		}
		return apiRequest{"deletecollection", resource}
	}
	return apiRequest{strings.ToLower(method), resource}
}

// requestCounter counts the API requests a client sends, by classifyRequest, reads included
// (testcluster.WriteCounter records writes only). Install it with rest.Config.Wrap(r.Wrap).
// The zero value is ready to use; it is safe for concurrent use.
type requestCounter struct {
	mu     sync.Mutex
	counts map[apiRequest]int
}

// Wrap returns rt counting the requests it sends, for rest.Config.Wrap.
func (r *requestCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return countingTransport{r, rt}
}

// countingTransport is the RoundTripper Wrap returns.
type countingTransport struct {
	r    *requestCounter
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := classifyRequest(req.Method, req.URL.Path, req.URL.Query().Get("watch") == "true")
	t.r.mu.Lock()
	if t.r.counts == nil {
		t.r.counts = map[apiRequest]int{}
	}
	t.r.counts[key]++
	t.r.mu.Unlock()
	return t.next.RoundTrip(req)
}

// snapshot returns the counts so far.
func (r *requestCounter) snapshot() map[apiRequest]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// requestTotals sums counts by verb, with Event writes apart ("events" in the verb's place):
// the Events a controller sends are not changes to the objects it manages.
func requestTotals(counts map[apiRequest]int) map[string]int {
	out := map[string]int{}
	for req, n := range counts {
		verb := req.verb
		if req.write() && req.resource == "events" {
			verb = "events"
		}
		out[verb] += n
	}
	return out
}

// writeCount counts the writes among counts: Events only, or everything but Events.
func writeCount(counts map[apiRequest]int, events bool) int {
	n := 0
	for req, v := range counts {
		if req.write() && (req.resource == "events") == events {
			n += v
		}
	}
	return n
}

// writesOf lists the writes among counts as "verb resource xN", sorted: Events only, or
// everything but Events.
func writesOf(counts map[apiRequest]int, events bool) []string {
	var out []string
	for req, n := range counts {
		if req.write() && (req.resource == "events") == events {
			out = append(out, fmt.Sprintf("%s x%d", req, n))
		}
	}
	slices.Sort(out)
	return out
}

func TestClassifyRequest(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		watch  bool
		want   apiRequest
	}{
		{name: "a named core object is a get", method: "GET", path: "/api/v1/namespaces/kube-system/configmaps/coredns", want: apiRequest{"get", "configmaps"}},
		{name: "a namespaced collection is a list", method: "GET", path: "/api/v1/namespaces/kube-system/secrets", want: apiRequest{"list", "secrets"}},
		{name: "a collection with watch=true is a watch", method: "GET", path: "/apis/helm.cattle.io/v1/helmcharts", watch: true, want: apiRequest{"watch", "helmcharts"}},
		{name: "a cluster-scoped named object of a group is a get", method: "GET", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/addons.k3s.cattle.io", want: apiRequest{"get", "customresourcedefinitions"}},
		{name: "a Namespace is a cluster-scoped object", method: "GET", path: "/api/v1/namespaces/kube-system", want: apiRequest{"get", "namespaces"}},
		{name: "the subresource is named with its resource", method: "PUT", path: "/apis/helm.cattle.io/v1/namespaces/ns/helmcharts/x/status", want: apiRequest{"update", "helmcharts/status"}},
		{name: "a PATCH is a patch", method: "PATCH", path: "/api/v1/namespaces/ns/configmaps/a", want: apiRequest{"patch", "configmaps"}},
		{name: "a POST is a create", method: "POST", path: "/api/v1/namespaces/ns/events", want: apiRequest{"create", "events"}},
		{name: "a DELETE of an object is a delete", method: "DELETE", path: "/api/v1/namespaces/ns/secrets/s", want: apiRequest{"delete", "secrets"}},
		{name: "a group version is discovery", method: "GET", path: "/apis/helm.cattle.io/v1", want: apiRequest{verb: "discovery"}},
		{name: "the API root is discovery", method: "GET", path: "/api", want: apiRequest{verb: "discovery"}},
		{name: "OpenAPI is discovery", method: "GET", path: "/openapi/v3", want: apiRequest{verb: "discovery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, classifyRequest(tt.method, tt.path, tt.watch))
		})
	}
}

func TestRequestTotalsCountEventsApart(t *testing.T) {
	counts := map[apiRequest]int{
		{"get", "addons"}: 3, {"list", "secrets"}: 2, {"create", "events"}: 4, {"patch", "events"}: 1,
		{"patch", "helmcharts"}: 1, {"discovery", ""}: 5,
	}
	assert.Equal(t, map[string]int{"get": 3, "list": 2, "events": 5, "patch": 1, "discovery": 5}, requestTotals(counts))
	assert.Equal(t, []string{"patch helmcharts x1"}, writesOf(counts, false))
	assert.Equal(t, []string{"create events x4", "patch events x1"}, writesOf(counts, true))
	assert.Equal(t, 1, writeCount(counts, false))
	assert.Equal(t, 5, writeCount(counts, true))
}
