package netpol

import (
	"context"
	"time"
)

// syncRunner is the controller's one dataplane worker: informer handlers only
// signal it, and it runs the whole-state sync, never two at once, so that
//
//   - a burst of signals costs one sync: signals arriving while a sync runs or waits are
//     remembered as one pending request (kube-router's capacity-1 channel), and two
//     syncs start at least minInterval apart, which kube-router lacks;
//   - a failed sync is retried without a new signal, after a backoff that doubles from
//     minInterval up to maxInterval, and no signal makes it retry sooner (a broken iptables
//     is not hammered by pod churn);
//   - with no signal at all, the sync still runs every maxInterval, to repair drift.
type syncRunner struct {
	// fn is the sync. ctx is the runner's.
	fn func(ctx context.Context) error
	// minInterval and maxInterval bound the time between two syncs, see above.
	minInterval, maxInterval time.Duration
	// pending holds at most one request: Signal never blocks and requests merge.
	pending chan struct{}
}

// newSyncRunner returns a runner of fn; Run starts it.
func newSyncRunner(fn func(ctx context.Context) error, minInterval, maxInterval time.Duration) *syncRunner {
	return &syncRunner{fn: fn, minInterval: minInterval, maxInterval: maxInterval, pending: make(chan struct{}, 1)}
}

// Signal asks for a sync. It never blocks; a request already pending absorbs it.
func (r *syncRunner) Signal() {
	select {
	case r.pending <- struct{}{}:
	default:
	}
}

// Run syncs once at once, then as described on syncRunner, until ctx ends. It must only be
// called after every cache the sync reads has synced: a sync on an empty cache would program
// an empty state, an allow window.
func (r *syncRunner) Run(ctx context.Context) {
	due := time.NewTimer(0)
	defer due.Stop()
	var last time.Time
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.pending:
		case <-due.C:
		}
		spacing := r.minInterval
		if failures > 0 {
			spacing = r.backoff(failures)
		}
		if wait := spacing - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		// Every request that came in while waiting is served by this sync.
		select {
		case <-r.pending:
		default:
		}
		last = time.Now()
		err := r.fn(ctx)
		if ctx.Err() != nil {
			return
		}
		next := r.maxInterval
		if err != nil {
			failures++
			next = r.backoff(failures)
		} else {
			failures = 0
		}
		// Since Go 1.23 Reset drops a value the timer may have delivered meanwhile.
		due.Reset(next)
	}
}

// backoff is the wait before retry number n (from 1): minInterval doubled n-1 times, at most
// maxInterval.
func (r *syncRunner) backoff(n int) time.Duration {
	d := r.minInterval
	for i := 1; i < n && d < r.maxInterval; i++ {
		d *= 2
	}
	return min(d, r.maxInterval)
}
