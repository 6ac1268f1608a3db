package helmjob

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/crdinstall"
	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/metricsreg"
	"github.com/k3snet/k3snet/internal/workloop"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// Event reasons on HelmCharts, K3s's helm-controller's.
const (
	// ReasonApplyJob: a chart's install job was created (or replaced).
	ReasonApplyJob = "ApplyJob"
	// ReasonRemoveJob: a deleted chart's uninstall job was created.
	ReasonRemoveJob = "RemoveJob"
	// ReasonJobFailed: a chart's job failed (its back-off limit is spent).
	ReasonJobFailed = "JobFailed"
	// ReasonUnsupportedVersion: spec.helmVersion is neither empty nor v3.
	ReasonUnsupportedVersion = "UnsupportedVersion"
	// ReasonInvalidChart: the chart's job cannot be built (a values document that cannot
	// be encoded, too many values files, a values Secret that cannot be read).
	ReasonInvalidChart = "InvalidChart"

	// eventComponent is the Events' source, K3s's controller name.
	eventComponent = "helm-controller"
	// fieldManager owns what the controller applies.
	fieldManager = "k3snet-helmjob"
	// releaseSecretType is the type of the Secrets Helm keeps release records in.
	releaseSecretType = "helm.sh/release.v1"
)

// Options configure the Controller. The zero value of each field means K3s's default.
type Options struct {
	// Config reaches the API server. Required.
	Config *rest.Config
	// ManagedBy is the controller name of the helmcharts.cattle.io/managed-by annotation.
	// Default helm-controller, K3s's, so charts a K3s server claimed are managed after a move.
	ManagedBy string
	// Namespace limits the controller to HelmCharts of one namespace. Default: all.
	Namespace string
	// Workers is the number of charts synced in parallel. Default 1.
	Workers int
	// Job shapes every chart's jobs (image, ClusterRole, API server port, proxy variables).
	Job JobOptions
	// StaticDir is the K3s server's static directory (<data-dir>/server/static). A chart
	// https://%{KUBERNETES_API}%/static/<path> is handed to its job as chart content read
	// from this directory (static.go). "" leaves such charts to the job to download.
	StaticDir string
	// EventRecorder records the Events on HelmCharts; nil builds one on Start.
	EventRecorder record.EventRecorder
	// MetricsRegistry, if set, gets packaged_helmchart_syncs_total.
	MetricsRegistry metrics.KubeRegistry
}

// Controller runs helm.cattle.io/v1 HelmCharts the way K3s's helm-controller does: for each
// chart it applies a service account, a ClusterRoleBinding, a values Secret, a content
// ConfigMap and the helm-install-<chart> Job (Build), replaces the Job when its config hash
// changes, reports status.jobName and the JobCreated and Failed conditions, and behind K3s's
// finalizer runs helm-delete-<chart> and removes the chart's objects once it completes.
// The Helm work happens in the Jobs' pods; this process links no Helm.
type Controller struct {
	started atomic.Bool
	client  kubernetes.Interface
	dyn     dynamic.Interface
	meta    metadata.Interface
	opts    Options

	charts, configs             cache.GenericLister
	chartIndex, configIndex     cache.Indexer
	jobs                        batchlisters.JobLister
	queue                       workqueue.TypedRateLimitingInterface[cache.ObjectName]
	recorder                    record.EventRecorder
	syncs                       metricsreg.ResultCounter
	chartsSynced, configsSynced cache.InformerSynced
}

// New returns a Controller that writes through client and clients built from opts.Config.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("helmjob: nil client")
	}
	if opts.Config == nil {
		return nil, errors.New("helmjob: a rest.Config (Config) is required")
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("helmjob: the number of Workers must not be negative, got %d", opts.Workers)
	}
	if opts.ManagedBy == "" {
		opts.ManagedBy = helmchart.DefaultManagedBy
	}
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("helmjob: building a dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("helmjob: building a metadata client: %w", err)
	}
	syncs, err := metricsreg.NewResultCounter(opts.MetricsRegistry, "packaged", "helmchart_syncs_total", "HelmChart syncs of the Helm controller, by result (success or error).")
	if err != nil {
		return nil, fmt.Errorf("helmjob: %w", err)
	}
	return &Controller{
		client: client, dyn: dyn, meta: meta, opts: opts, syncs: syncs,
		recorder: &record.FakeRecorder{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "helmchart"}),
	}, nil
}

// Start installs the HelmChart and HelmChartConfig CRDs, watches HelmCharts, HelmChartConfigs,
// the metadata of Secrets (a values Secret's change re-syncs its charts) and the helm Jobs
// through informers of its own (factory is accepted for the controller contract and started),
// waits for their caches, launches the workers and returns. Everything stops with ctx. A
// Controller starts once.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("helmjob: Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("helmjob")
	ctx = klog.NewContext(ctx, logger)
	if err := c.startInformers(ctx, factory); err != nil {
		c.queue.ShutDown()
		return err
	}
	c.recorder = c.opts.EventRecorder
	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: eventComponent}, 2)
	}
	logger.Info("Starting helm controller (jobs)", "managedBy", c.opts.ManagedBy, "workers", c.opts.Workers)
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		defer c.queue.ShutDown()
		workloop.Run(ctx, c.opts.Workers, c.queue, "Syncing HelmChart", func(ctx context.Context, key cache.ObjectName) error {
			return c.syncs.Observe(c.sync(ctx, key))
		})
		<-ctx.Done()
	}()
	return nil
}

func (c *Controller) startInformers(ctx context.Context, factory informers.SharedInformerFactory) error {
	defs, err := helmchart.CRDs()
	if err != nil {
		return err
	}
	if _, err := crdinstall.Install(ctx, c.dyn, fieldManager, defs...); err != nil {
		return fmt.Errorf("helmjob: %w", err)
	}
	dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 0, c.opts.Namespace, nil)
	chartInf := dynFactory.ForResource(helmchart.Resource)
	configInf := dynFactory.ForResource(helmchart.ConfigResource)
	if err := chartInf.Informer().AddIndexers(cache.Indexers{helmchart.SecretRefIndex: helmchart.ChartSecretRefs}); err != nil {
		return fmt.Errorf("helmjob: indexing HelmCharts by Secret: %w", err)
	}
	if err := configInf.Informer().AddIndexers(cache.Indexers{helmchart.SecretRefIndex: helmchart.ConfigSecretRefs}); err != nil {
		return fmt.Errorf("helmjob: indexing HelmChartConfigs by Secret: %w", err)
	}
	c.charts, c.chartIndex, c.chartsSynced = chartInf.Lister(), chartInf.Informer().GetIndexer(), chartInf.Informer().HasSynced
	c.configs, c.configIndex, c.configsSynced = configInf.Lister(), configInf.Informer().GetIndexer(), configInf.Informer().HasSynced
	// A HelmChartConfig's key is its chart's (same namespace and name).
	handlers := cache.ResourceEventHandlerFuncs{AddFunc: c.enqueue, UpdateFunc: c.update(c.enqueue), DeleteFunc: c.enqueue}
	for what, inf := range map[string]cache.SharedIndexInformer{"HelmCharts": chartInf.Informer(), "HelmChartConfigs": configInf.Informer()} {
		if _, err := inf.AddEventHandler(handlers); err != nil {
			return fmt.Errorf("helmjob: watching %s: %w", what, err)
		}
	}

	// Secrets' metadata, without Helm's release records (large, and no chart names one).
	secretFactory := metadatainformer.NewFilteredSharedInformerFactory(c.meta, 0, c.opts.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermNotEqualSelector("type", releaseSecretType).String()
	})
	secretInf := secretFactory.ForResource(corev1.SchemeGroupVersion.WithResource("secrets")).Informer()
	if _, err := secretInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueReaders, UpdateFunc: c.update(c.enqueueReaders), DeleteFunc: c.enqueueReaders,
	}); err != nil {
		return fmt.Errorf("helmjob: watching Secrets: %w", err)
	}

	// The helm jobs only: those labelled with their chart.
	jobFactory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithNamespace(c.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = helmchart.LabelChart }))
	jobInf := jobFactory.Batch().V1().Jobs()
	if _, err := jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueJobChart, UpdateFunc: c.update(c.enqueueJobChart), DeleteFunc: c.enqueueJobChart,
	}); err != nil {
		return fmt.Errorf("helmjob: watching Jobs: %w", err)
	}
	c.jobs = jobInf.Lister()

	if factory != nil {
		factory.Start(ctx.Done())
	}
	for _, f := range []interface{ Start(<-chan struct{}) }{dynFactory, secretFactory, jobFactory} {
		f.Start(ctx.Done())
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.chartsSynced, c.configsSynced, secretInf.HasSynced, jobInf.Informer().HasSynced) {
		return errors.New("helmjob: caches did not sync")
	}
	return nil
}

// update drops informer resyncs, which change nothing.
func (c *Controller) update(handle func(any)) func(oldObj, newObj any) {
	return func(oldObj, newObj any) {
		if !workloop.IsResync(oldObj, newObj) {
			handle(newObj)
		}
	}
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// enqueueReaders queues the charts that read a Secret, directly or through their config.
func (c *Controller) enqueueReaders(obj any) {
	readers, err := helmchart.SecretReaders(obj, c.chartIndex, c.configIndex)
	if err != nil {
		utilruntime.HandleError(err)
	}
	for _, o := range readers {
		c.enqueue(o)
	}
}

// enqueueJobChart queues the chart a helm job runs for.
func (c *Controller) enqueueJobChart(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if chart := m.GetLabels()[helmchart.LabelChart]; chart != "" {
		c.queue.Add(cache.ObjectName{Namespace: m.GetNamespace(), Name: chart})
	}
}
