package testcluster

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WriteCounter records the API requests a client makes that are not reads (GET, which
// includes lists and watches, and HEAD), to check that a controller in steady state writes
// nothing. Each is recorded as "METHOD path", e.g. "PATCH /api/v1/nodes/a/status". Install it
// with rest.Config.Wrap(w.Wrap). The zero value is ready to use; it is safe for concurrent use.
type WriteCounter struct {
	// ContentType, set before Wrap, appends the request's Content-Type to each record
	// ("METHOD path type"): it tells a server-side apply from a merge patch.
	ContentType bool

	mu     sync.Mutex
	writes []string
	at     []time.Time
	reads  atomic.Int64
}

// roundTripperFunc is an http.RoundTripper from a function.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Wrap returns rt recording the writes it sends. Its signature is that of a
// transport.WrapperFunc, for rest.Config.Wrap.
func (w *WriteCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.reads.Add(1)
		} else {
			s := r.Method + " " + r.URL.Path
			if w.ContentType {
				s += " " + r.Header.Get("Content-Type")
			}
			w.mu.Lock()
			w.writes = append(w.writes, s)
			w.at = append(w.at, time.Now())
			w.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

// Reads returns how many reads (GET, HEAD) were sent: what a controller's steady state costs
// the API server when it writes nothing.
func (w *WriteCounter) Reads() int64 { return w.reads.Load() }

// Count returns how many writes were recorded, to pass to Since later.
func (w *WriteCounter) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

// Since returns the writes recorded after the first n, in the order they were sent.
func (w *WriteCounter) Since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes[n:])
}

// TimesSince returns when each write after the first n was sent; it matches Since(n)
// index by index when no write came in between the two calls.
func (w *WriteCounter) TimesSince(n int) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.at[n:])
}
