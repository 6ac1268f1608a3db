package compose

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Readiness records, per controller, whether it started; /readyz reports it. A standby that
// does not hold its lease counts as ready: it is doing what it should.
type Readiness struct {
	mu    sync.Mutex
	state map[string]error
}

// NewReadiness returns a Readiness in which each named controller has not started yet.
func NewReadiness(names ...string) *Readiness {
	r := &Readiness{state: map[string]error{}}
	for _, n := range names {
		r.state[n] = errors.New("not started")
	}
	return r
}

// Set records the named controller's state: nil is ready, an error says why not.
func (r *Readiness) Set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state[name] = err
}

// Report returns one line per controller, sorted by name, and whether all are ready.
func (r *Readiness) Report() (string, bool) {
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
