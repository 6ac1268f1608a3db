package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
)

// readiness records, per controller, whether it started; /readyz reports it. A standby that
// does not hold its lease counts as ready: it is doing what it should.
type readiness struct {
	mu    sync.Mutex
	state map[string]error
}

func newReadiness(names ...string) *readiness {
	r := &readiness{state: map[string]error{}}
	for _, n := range names {
		r.state[n] = errors.New("not started")
	}
	return r
}

func (r *readiness) set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state[name] = err
}

// report returns one line per controller and whether all are ready.
func (r *readiness) report() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.state))
	for n := range r.state {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	ok := true
	for _, n := range names {
		if err := r.state[n]; err != nil {
			ok = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", n, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", n)
		}
	}
	return b.String(), ok
}

// serveHealth serves /healthz, /readyz and /metrics (Prometheus text: component-base's
// registry and the controllers') on addr until ctx ends.
func serveHealth(ctx context.Context, addr string, status *readiness, gatherer metrics.Gatherer) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		text, ok := status.report()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, text)
	})
	mux.Handle("/metrics", metrics.HandlerFor(gatherer, metrics.HandlerOpts{}))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on --metrics-bind-address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "Health server stopped")
		}
	}()
	return nil
}

func metaFor(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
