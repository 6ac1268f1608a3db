package workloop

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
)

func TestProcessNext(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "services"}, "a", errors.New("changed"))
	tests := []struct {
		name         string
		err          error
		wantRequeues int
	}{
		{name: "a sync that succeeds forgets the key's two failures", err: nil, wantRequeues: 0},
		{name: "a failed sync requeues the key with backoff", err: errors.New("boom"), wantRequeues: 2},
		{name: "a conflict requeues the key too", err: conflict, wantRequeues: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
			defer q.ShutDown()
			q.Add("k")
			// A key that failed before has a retry history that success must clear.
			q.AddRateLimited("k")
			var synced []string
			ok := ProcessNext(context.Background(), q, "Syncing thing", func(_ context.Context, key string) error {
				synced = append(synced, key)
				return tt.err
			})
			assert.True(t, ok)
			assert.Equal(t, []string{"k"}, synced)
			assert.Equal(t, tt.wantRequeues, q.NumRequeues("k"))
		})
	}
}

func TestProcessNextStopsAtShutdown(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	q.ShutDown()
	called := false
	assert.False(t, ProcessNext(context.Background(), q, "Syncing thing", func(context.Context, string) error {
		called = true
		return nil
	}))
	assert.False(t, called)
}

func TestIsResync(t *testing.T) {
	at := func(rv string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
	}
	assert.True(t, IsResync(at("5"), at("5")), "the same resourceVersion is a resync")
	assert.False(t, IsResync(at("5"), at("6")), "a new resourceVersion is a change")
	assert.False(t, IsResync("not an object", at("5")), "anything else is handled as a change")
}
