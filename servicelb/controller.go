package servicelb

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Options configures the ServiceLB controller. The zero value of each field means K3s's default.
type Options struct {
	// Namespace is where the per-Service DaemonSets live (K3s: --servicelb-namespace).
	Namespace string
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "kube-system"
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error

	return errors.Join(errs...)
}

// Controller is the ServiceLB controller. Build it with New and run it with Start.
type Controller struct {
	client kubernetes.Interface
	opts   Options
}

// New returns a Controller that talks to the API server through client.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("servicelb: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("servicelb: invalid options: %w", err)
	}
	return &Controller{client: client, opts: opts}, nil
}

// Start registers the informers the controller needs on factory, starts the factory (which
// is idempotent, so controllers can share one), waits for those caches and returns. Workers
// stop when ctx ends.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	synced := []cache.InformerSynced{
		factory.Core().V1().Services().Informer().HasSynced,
		factory.Core().V1().Nodes().Informer().HasSynced,
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("servicelb: caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}
