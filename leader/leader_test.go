package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// state records the last state Run reported.
type state struct {
	mu  sync.Mutex
	err error
}

func (s *state) report(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }
func (s *state) last() error      { s.mu.Lock(); defer s.mu.Unlock(); return s.err }

// TestLeaderWhoseControllerFailsHandsOver: an instance whose controller cannot start releases
// the Lease and reports the error, so a healthy instance leads instead of waiting behind it.
func TestLeaderWhoseControllerFailsHandsOver(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(t.Context())
	var running sync.WaitGroup
	defer func() { cancel(); running.Wait() }()

	var broken, healthy state
	var brokenTried, healthyLed atomic.Int32
	running.Go(func() {
		Run(ctx, client, Lease{Namespace: "kube-system", Name: "k3snet-deploy", Identity: "broken"}, func(context.Context) error {
			brokenTried.Add(1)
			return errors.New("no manifests directory")
		}, broken.report)
	})
	require.Eventually(t, func() bool { return brokenTried.Load() == 1 }, 30*time.Second, 50*time.Millisecond,
		"the first instance takes the free Lease")
	running.Go(func() {
		Run(ctx, client, Lease{Namespace: "kube-system", Name: "k3snet-deploy", Identity: "healthy"}, func(context.Context) error {
			healthyLed.Add(1)
			return nil
		}, healthy.report)
	})
	require.Eventually(t, func() bool { return healthyLed.Load() == 1 }, 30*time.Second, 50*time.Millisecond,
		"the healthy instance gets the Lease the broken one released")
	require.Error(t, broken.last(), "the broken instance reports the failure")
	assert.Contains(t, broken.last().Error(), "no manifests directory")
	assert.NoError(t, healthy.last())
	assert.Equal(t, int32(1), brokenTried.Load(), "the broken instance does not take the Lease back while the healthy one holds it")
}

// TestScopedFactoryOutlivesTheTerm: a controller starts the factory with its term's context;
// after the term ends, the next term's controller still gets fresh objects from the cache.
func TestScopedFactoryOutlivesTheTerm(t *testing.T) {
	client := fake.NewClientset()
	factory := ScopedFactory(informers.NewSharedInformerFactory(client, 0), t.Context().Done())
	configMaps := factory.Core().V1().ConfigMaps()
	informer := configMaps.Informer()

	term, endTerm := context.WithCancel(t.Context())
	factory.Start(term.Done()) // what every controller's Start does
	require.True(t, cache.WaitForCacheSync(t.Context().Done(), informer.HasSynced))
	endTerm()

	_, err := client.CoreV1().ConfigMaps("kube-system").Create(t.Context(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "after-the-term"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := configMaps.Lister().ConfigMaps("kube-system").Get("after-the-term")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the informer still runs after the term that started it")
}
