// Package workloop is the worker loop every k3snet controller runs over its work queue: one
// key at a time per worker; a sync that succeeds forgets the key's retry history, one that
// fails puts the key back with the queue's rate limit (client-go's controller pattern).
package workloop

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Sync brings the object named by key to what the caches say it should be.
type Sync[K comparable] func(ctx context.Context, key K) error

// ProcessNext takes one key from q and syncs it; it returns false once q shuts down. An error
// requeues the key with backoff: a Conflict (the cache was behind, and the watch brings the
// newer object) or an error of a sync cut short by shutdown is logged at V(2), any other goes
// to utilruntime.HandleError. what names the work in that message ("Syncing Service").
func ProcessNext[K comparable](ctx context.Context, q workqueue.TypedRateLimitingInterface[K], what string, sync Sync[K]) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	err := sync(ctx, key)
	switch {
	case err == nil:
		q.Forget(key)
		return true
	case apierrors.IsConflict(err) || ctx.Err() != nil:
		klog.FromContext(ctx).V(2).Info(what+" met a newer object or shutdown; requeueing", "key", key, "err", err)
	default:
		utilruntime.HandleErrorWithContext(ctx, err, what+" failed; requeueing", "key", key)
	}
	q.AddRateLimited(key)
	return true
}

// Run starts workers goroutines that process q until it shuts down; a worker that panics is
// restarted after a second (utilruntime's crash handler logs the panic).
func Run[K comparable](ctx context.Context, workers int, q workqueue.TypedRateLimitingInterface[K], what string, sync Sync[K]) {
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for ProcessNext(ctx, q, what, sync) {
			}
		}, time.Second)
	}
}

// IsResync reports whether an informer update is a resync: the same object again (same
// resourceVersion), which an update handler drops because nothing changed.
func IsResync(oldObj, newObj any) bool {
	o, ok1 := oldObj.(metav1.Object)
	n, ok2 := newObj.(metav1.Object)
	return ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion()
}
