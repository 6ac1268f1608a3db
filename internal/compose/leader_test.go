package compose

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLeaderWhoseControllerFailsHandsOver: a server whose controller cannot start releases
// the Lease and reports the error, so a healthy server leads instead of waiting behind it.
func TestLeaderWhoseControllerFailsHandsOver(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	var running sync.WaitGroup
	defer func() { cancel(); running.Wait() }()

	broken, healthy := NewReadiness(), NewReadiness()
	var brokenTried, healthyLed atomic.Int32
	running.Go(func() {
		RunAsLeader(ctx, client, Leases{Namespace: "kube-system", Identity: "broken"}, "deploy", broken, func(context.Context) error {
			brokenTried.Add(1)
			return errors.New("no manifests directory")
		})
	})
	require.Eventually(t, func() bool { return brokenTried.Load() == 1 }, 30*time.Second, 50*time.Millisecond,
		"the first server takes the free Lease")
	running.Go(func() {
		RunAsLeader(ctx, client, Leases{Namespace: "kube-system", Identity: "healthy"}, "deploy", healthy, func(context.Context) error {
			healthyLed.Add(1)
			return nil
		})
	})
	require.Eventually(t, func() bool { return healthyLed.Load() == 1 }, 30*time.Second, 50*time.Millisecond,
		"the healthy server gets the Lease the broken one released")
	report, ok := broken.Report()
	assert.False(t, ok, "the broken server reports the failure: %s", report)
	assert.Contains(t, report, "no manifests directory")
	_, ok = healthy.Report()
	assert.True(t, ok)
	assert.Equal(t, int32(1), brokenTried.Load(), "the broken server does not take the Lease back while the healthy one holds it")
}
