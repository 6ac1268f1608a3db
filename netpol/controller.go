package netpol

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Options configures the NetworkPolicy controller. The zero value of each field means K3s's default.
type Options struct {
	// NodeName is the node whose local pods this controller protects.
	NodeName string
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {

	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	return errors.Join(errs...)
}

// Controller is the NetworkPolicy controller. Build it with New and run it with Start.
type Controller struct {
	client kubernetes.Interface
	opts   Options
}

// New returns a Controller that talks to the API server through client.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("netpol: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("netpol: invalid options: %w", err)
	}
	return &Controller{client: client, opts: opts}, nil
}

// Start registers the informers the controller needs on factory, starts the factory (which
// is idempotent, so controllers can share one), waits for those caches and returns. Workers
// stop when ctx ends.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	synced := []cache.InformerSynced{
		factory.Core().V1().Pods().Informer().HasSynced,
		factory.Core().V1().Namespaces().Informer().HasSynced,
		factory.Networking().V1().NetworkPolicies().Informer().HasSynced,
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("netpol: caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}
