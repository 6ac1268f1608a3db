package ccmstub

import (
	"slices"
	"sync"
)

// warning is one Warning Event the stub owes a Node.
type warning struct {
	reason  string
	message string
}

// reportedWarnings remembers, per node, the warnings last reported, so that a Warning Event is
// sent when a problem appears and not again on every sync of a node that still has it (Events
// are emitted on change). Node heartbeats would otherwise repeat the same Event for as long as a
// bad annotation stays. It is the controller's only state besides its caches, and losing it
// (a restart) costs one repeated Event per problem.
type reportedWarnings struct {
	mu     sync.Mutex
	byNode map[string][]warning
}

func newReportedWarnings() *reportedWarnings {
	return &reportedWarnings{byNode: map[string][]warning{}}
}

// update records current as the node's warnings and returns those not reported last time.
func (r *reportedWarnings) update(node string, current []warning) []warning {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A set keeps this linear: a node may carry an annotation with thousands of bad items.
	reported := make(map[warning]bool, len(r.byNode[node]))
	for _, w := range r.byNode[node] {
		reported[w] = true
	}
	var fresh []warning
	for _, w := range current {
		if !reported[w] {
			fresh = append(fresh, w)
		}
	}
	if len(current) == 0 {
		delete(r.byNode, node)
	} else {
		r.byNode[node] = slices.Clone(current)
	}
	return fresh
}

// forget drops a deleted node's warnings.
func (r *reportedWarnings) forget(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byNode, node)
}
