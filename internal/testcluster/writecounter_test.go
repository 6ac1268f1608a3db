package testcluster_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// okTransport answers every request with 200 and counts what reached it.
type okTransport struct {
	mu  sync.Mutex
	got int
}

func (o *okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got++
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

type request struct {
	method, path, contentType string
}

func send(t *testing.T, rt http.RoundTripper, reqs ...request) {
	t.Helper()
	for _, r := range reqs {
		req, err := http.NewRequest(r.method, "https://127.0.0.1:6443"+r.path, strings.NewReader(""))
		require.NoError(t, err)
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
}

func TestWriteCounter(t *testing.T) {
	reqs := []request{
		{method: http.MethodGet, path: "/api/v1/nodes"},
		{method: http.MethodPost, path: "/api/v1/namespaces/ns/events", contentType: "application/vnd.kubernetes.protobuf"},
		{method: http.MethodHead, path: "/api/v1/nodes/a"},
		{method: http.MethodPatch, path: "/apis/apps/v1/namespaces/ns/daemonsets/ds", contentType: "application/apply-patch+yaml"},
		{method: http.MethodPatch, path: "/api/v1/nodes/a/status", contentType: "application/merge-patch+json"},
		{method: http.MethodDelete, path: "/api/v1/nodes/a"},
	}
	tests := []struct {
		name        string
		contentType bool
		want        []string
	}{
		{
			name: "writes are recorded as method and path, reads are not",
			want: []string{
				"POST /api/v1/namespaces/ns/events",
				"PATCH /apis/apps/v1/namespaces/ns/daemonsets/ds",
				"PATCH /api/v1/nodes/a/status",
				"DELETE /api/v1/nodes/a",
			},
		},
		{
			name:        "ContentType tells an apply from a merge patch",
			contentType: true,
			want: []string{
				"POST /api/v1/namespaces/ns/events application/vnd.kubernetes.protobuf",
				"PATCH /apis/apps/v1/namespaces/ns/daemonsets/ds application/apply-patch+yaml",
				"PATCH /api/v1/nodes/a/status application/merge-patch+json",
				"DELETE /api/v1/nodes/a ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &testcluster.WriteCounter{ContentType: tt.contentType}
			next := &okTransport{}
			rt := w.Wrap(next)
			assert.Zero(t, w.Count())
			assert.Empty(t, w.Since(0))

			send(t, rt, reqs[:2]...)
			mid := w.Count()
			assert.Equal(t, 1, mid)
			send(t, rt, reqs[2:]...)

			assert.Equal(t, len(reqs), next.got, "every request goes through")
			assert.Equal(t, int64(2), w.Reads(), "the GET and the HEAD")
			assert.Equal(t, len(tt.want), w.Count())
			assert.Equal(t, tt.want, w.Since(0))
			assert.Equal(t, tt.want[mid:], w.Since(mid), "the writes after the first %d", mid)
			times := w.TimesSince(0)
			require.Len(t, times, len(tt.want))
			for i := 1; i < len(times); i++ {
				assert.False(t, times[i].Before(times[i-1]), "times are in the order of the writes")
			}
			assert.Equal(t, times[mid:], w.TimesSince(mid))
		})
	}
}

func TestWriteCounterIsSafeForConcurrentUse(t *testing.T) {
	var w testcluster.WriteCounter
	rt := w.Wrap(&okTransport{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				req, _ := http.NewRequest(http.MethodPut, "https://127.0.0.1:6443/api/v1/nodes/a", http.NoBody)
				if _, err := rt.RoundTrip(req); err != nil {
					t.Error(err)
				}
				_ = w.Since(w.Count())
				_ = w.TimesSince(0)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 400, w.Count())
}
