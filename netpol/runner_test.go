package netpol

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSyncRunnerMergesSignalsDuringASync blocks the first sync and signals 100 times
// meanwhile: exactly one more sync serves them all.
func TestSyncRunnerMergesSignalsDuringASync(t *testing.T) {
	var runs atomic.Int32
	started, gate := make(chan struct{}), make(chan struct{})
	done := make(chan int32, 10)
	r := newSyncRunner(func(context.Context) error {
		n := runs.Add(1)
		if n == 1 {
			close(started)
			<-gate
		}
		done <- n
		return nil
	}, 10*time.Millisecond, time.Hour)
	go r.Run(t.Context())
	recv(t, started)
	for range 100 {
		r.Signal()
	}
	close(gate)
	require.Equal(t, int32(1), recv(t, done))
	require.Equal(t, int32(2), recv(t, done))
	// Nothing else is pending, so no third sync comes within many minIntervals.
	select {
	case n := <-done:
		t.Fatalf("sync %d ran without a signal", n)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestSyncRunnerRetriesWithBackoff fails twice: the runner retries without any signal, with
// a growing wait, and stops retrying after a success.
func TestSyncRunnerRetriesWithBackoff(t *testing.T) {
	var runs atomic.Int32
	done := make(chan int32, 10)
	r := newSyncRunner(func(context.Context) error {
		n := runs.Add(1)
		done <- n
		if n <= 2 {
			return errors.New("iptables-restore failed")
		}
		return nil
	}, 20*time.Millisecond, time.Hour)
	go r.Run(t.Context())
	start := time.Now()
	for want := int32(1); want <= 3; want++ {
		require.Equal(t, want, recv(t, done))
	}
	// 20 ms then 40 ms of backoff.
	assert.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)
	select {
	case n := <-done:
		t.Fatalf("sync %d ran after a success without a signal", n)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestSyncRunnerRepairsAfterMaxInterval runs with no signal at all: the sync still repeats.
func TestSyncRunnerRepairsAfterMaxInterval(t *testing.T) {
	done := make(chan int32, 10)
	var runs atomic.Int32
	r := newSyncRunner(func(context.Context) error { done <- runs.Add(1); return nil }, time.Millisecond, 30*time.Millisecond)
	go r.Run(t.Context())
	for want := int32(1); want <= 3; want++ {
		require.Equal(t, want, recv(t, done))
	}
}

func TestSyncRunnerBackoff(t *testing.T) {
	r := newSyncRunner(nil, time.Second, 5*time.Second)
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		assert.Equal(t, want, r.backoff(n), "retry %d", n)
	}
}

// recv receives from ch or fails after waitFor.
func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatal("timed out")
		var zero T
		return zero
	}
}
