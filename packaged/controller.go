package packaged

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/k3snet/k3snet/internal/metricsreg"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
)

// defaultInterval is how often the deploy loop passes over the directory without a file
// event, as K3s's deploy controller's 15 s loop.
const defaultInterval = 15 * time.Second

// Controller is the deploy (Addon) controller: it applies every manifest file of
// Options.ManifestsDir and tracks each file with an Addon, as K3s's deploy controller does. Build it with New and
// run it with Start.
type Controller struct {
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
	// client sends Events and serves discovery.
	client kubernetes.Interface
	// opts are the validated options.
	opts Options
	// applier applies and prunes objects of any kind.
	applier *applier
	// addons reads and writes Addons.
	addons addonClient
	// recorder sends Events on Addons; Start replaces the no-op one with a broadcaster's.
	recorder record.EventRecorder
	// applies counts manifest files applied, by result.
	applies metricsreg.ResultCounter
	// nodeRecorder sends the NodeHosts Warnings on Nodes; startEvents sets it.
	nodeRecorder record.EventRecorder
	// files is the per-file state of the deploy loop; only the loop goroutine uses it.
	files map[string]fileState
	// maxManifestBytes is the longest manifest the deploy loop reads
	// (defaultMaxManifestBytes); tests lower it.
	maxManifestBytes int64
	// afterPass, when set (by tests), is called after every pass with its error.
	afterPass func(error)
}

// New returns a Controller that talks to the API server through client and opts.Dynamic.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("packaged: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("packaged: invalid options: %w", err)
	}
	applies, err := metricsreg.NewResultCounter(opts.MetricsRegistry, "packaged", "manifest_applies_total", "Manifest files applied by the deploy controller, by result (success or error).")
	if err != nil {
		return nil, fmt.Errorf("packaged: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	return &Controller{
		applies:  applies,
		client:   client,
		opts:     opts,
		applier:  &applier{dyn: opts.Dynamic, mapper: mapper},
		addons:   addonClient{dyn: opts.Dynamic},
		recorder: &record.FakeRecorder{},
		files:    map[string]fileState{},

		maxManifestBytes: defaultMaxManifestBytes,
	}, nil
}

// Start installs the CRDs the package owns (Addon, HelmChart, HelmChartConfig) and waits
// until they are served, launches the deploy loop and, unless coredns is disabled, the
// NodeHosts worker (whose Node and ConfigMap informers come from factory), and returns.
// Everything stops when ctx ends. The deploy loop itself needs no informer: it is driven by
// files and reads Addons through the API (see addonClient).
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("packaged: Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("packaged")
	ctx = klog.NewContext(ctx, logger)
	if err := os.MkdirAll(c.opts.ManifestsDir, 0o700); err != nil {
		return fmt.Errorf("packaged: creating the manifests directory: %w", err)
	}
	if err := c.applier.installCRDs(ctx); err != nil {
		return fmt.Errorf("packaged: %w", err)
	}
	// NodeHosts follows CoreDNS: disabling coredns turns it off too, as in K3s.
	var nodeHosts *nodeHostsController
	if !c.opts.Disables[corednsName] && !c.opts.DisableNodeHosts {
		var err error
		if nodeHosts, err = c.newNodeHosts(factory); err != nil {
			return fmt.Errorf("packaged: %w", err)
		}
	}
	factory.Start(ctx.Done())
	stopEvents := c.startEvents(ctx)
	if nodeHosts != nil {
		nodeHosts.recorder = c.nodeRecorder
		if err := nodeHosts.run(klog.NewContext(ctx, logger.WithName("nodehosts"))); err != nil {
			stopEvents()
			return fmt.Errorf("packaged: %w", err)
		}
	}
	if c.opts.DisableDeploy {
		go func() { <-ctx.Done(); stopEvents() }()
		return nil
	}
	ctx = klog.NewContext(ctx, logger.WithName("deploy"))
	logger.Info("Starting deploy controller", "dir", c.opts.ManifestsDir, "interval", c.opts.Interval)
	go func() {
		defer runtime.HandleCrashWithContext(ctx)
		defer stopEvents()
		c.run(ctx)
	}()
	return nil
}

// startEvents points the recorders at a broadcaster that writes Events to the API server
// and logs them, and returns the broadcaster's shutdown.
func (c *Controller) startEvents(ctx context.Context) func() {
	if c.opts.EventRecorder != nil {
		c.recorder, c.nodeRecorder = c.opts.EventRecorder, c.opts.EventRecorder
		return func() {}
	}
	ctx, stop := context.WithCancel(ctx)
	broadcaster := events.NewBroadcaster(ctx, c.client, 2)
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: eventComponent})
	c.nodeRecorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: nodeHostsEventComponent})
	return stop
}
