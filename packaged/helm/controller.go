package helm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/metricsreg"
	"github.com/k3snet/k3snet/internal/workloop"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// Event reasons on HelmCharts. K3s's reasons name its job (ApplyJob, RemoveJob, JobFailed);
// k3snet runs Helm in-process, so its reasons name the Helm operation instead. Where K3s has
// a reason for the same decision (UnsupportedVersion) it is reused.
const (
	// ReasonChartInstalled is emitted after a release was installed.
	ReasonChartInstalled = "ChartInstalled"
	// ReasonChartUpgraded is emitted after a release was upgraded (chart or values changed,
	// or a failed release retried).
	ReasonChartUpgraded = "ChartUpgraded"
	// ReasonChartReinstalled is emitted after a failed release was uninstalled and installed
	// again (failure policy reinstall).
	ReasonChartReinstalled = "ChartReinstalled"
	// ReasonChartUninstalled is emitted after a deleted HelmChart's release was uninstalled.
	ReasonChartUninstalled = "ChartUninstalled"
	// ReasonChartFailed is emitted when a Helm operation fails or the failure policy is abort.
	ReasonChartFailed = "ChartFailed"
	// ReasonUnsupportedVersion is K3s's reason for a helmVersion other than "" or v3.
	ReasonUnsupportedVersion = "UnsupportedVersion"
	// ReasonUnsupportedChartSource is emitted for a chart source k3snet cannot install: a
	// %{KUBERNETES_API}% chart that is not a file of Options.StaticDir (or with no
	// StaticDir), a URL scheme other than http, https and oci, or a chart name without a
	// repository.
	ReasonUnsupportedChartSource = "UnsupportedChartSource"
	// ReasonChartDownloadFailed is emitted when a chart cannot be downloaded from its URL,
	// repository or registry, or its credentials cannot be read; the download is retried
	// with backoff.
	ReasonChartDownloadFailed = "ChartDownloadFailed"
	// ReasonUnsupportedValues is emitted, as a Warning, when the values of a release of
	// k3snet's own Traefik chart hold keys the chart does not understand; they are named
	// and the chart is installed anyway, without them.
	ReasonUnsupportedValues = "UnsupportedValues"

	// helmEventComponent is the Events' source, K3s's controller name.
	helmEventComponent = "helm-controller"
	// helmQueueName names the work queue in metrics and logs.
	helmQueueName = "helmchart"
)

// HelmChartResource is the HelmChart API.
func HelmChartResource() schema.GroupVersionResource { return helmchart.Resource }

// HelmChartConfigResource is the HelmChartConfig API.
func HelmChartConfigResource() schema.GroupVersionResource { return helmchart.ConfigResource }

// Controller installs helm.cattle.io/v1 HelmCharts in-process with the Helm SDK, as K3s's
// helm-controller does with its helm jobs: install, upgrade when the merged values or the chart
// change, uninstall behind the finalizer when the HelmChart is deleted. It is separate from
// the deploy controller because it needs a rest.Config for Helm and can be disabled on its
// own (K3s's --disable-helm-controller). Build it with New and run it with Start, which
// installs the HelmChart and HelmChartConfig CRDs first.
type Controller struct {
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
	// client sends Events and reads values Secrets, auth Secrets and CA ConfigMaps.
	client kubernetes.Interface
	// dyn writes HelmChart metadata and status.
	dyn dynamic.Interface
	// meta watches Secrets' metadata: a change to a referenced Secret re-syncs its charts.
	meta metadata.Interface
	// fetcher downloads charts from URLs, repositories and registries, with a cache.
	fetcher *chartFetcher
	// opts are the validated options.
	opts Options
	// getter hands the Helm SDK the controller's config and shared discovery.
	getter *restGetter
	// charts and configs list HelmCharts and HelmChartConfigs; Start sets them.
	charts, configs             cache.GenericLister
	chartsSynced, configsSynced cache.InformerSynced
	// chartIndex and configIndex map a Secret's "<namespace>/<name>" to the HelmCharts
	// and HelmChartConfigs that read it (index helmchart.SecretRefIndex).
	chartIndex, configIndex cache.Indexer
	// secretsSynced reports the Secret metadata cache synced.
	secretsSynced cache.InformerSynced
	// queue holds the keys of HelmCharts to reconcile.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder sends Events on HelmCharts; Start replaces the no-op one with a broadcaster's.
	recorder record.EventRecorder
	// syncs counts HelmChart syncs, by result.
	syncs metricsreg.ResultCounter
}

// New returns a Controller that reads and writes through client and a
// dynamic client built from opts.Config.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("packaged: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("packaged: invalid helm options: %w", err)
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("packaged: building a dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("packaged: building a metadata client: %w", err)
	}
	getter, err := newRESTGetter(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("packaged: %w", err)
	}
	syncs, err := metricsreg.NewResultCounter(opts.MetricsRegistry, "packaged", "helmchart_syncs_total", "HelmChart syncs of the Helm controller, by result (success or error).")
	if err != nil {
		return nil, fmt.Errorf("packaged: %w", err)
	}
	return &Controller{
		syncs:    syncs,
		client:   client,
		dyn:      dyn,
		meta:     meta,
		fetcher:  newChartFetcher(opts.DownloadTimeout, opts.StaticDir),
		opts:     opts,
		getter:   getter,
		recorder: &record.FakeRecorder{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: helmQueueName}),
	}, nil
}

// Start watches HelmCharts and HelmChartConfigs through a dynamic informer factory of its
// own (client-go has no typed informer for them) and Secrets through a metadata-only
// informer of its own (see watchSecrets; factory is accepted for the controller contract
// and started, but nothing is registered on it), waits for their caches, launches the
// workers and returns. Everything stops when ctx ends.
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("packaged: Helm controller: Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("helm")
	ctx = klog.NewContext(ctx, logger)
	if err := c.startInformers(ctx, factory); err != nil {
		c.queue.ShutDown()
		return err
	}
	c.recorder = c.opts.EventRecorder
	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: helmEventComponent}, 2)
	}
	logger.Info("Starting helm controller", "managedBy", c.opts.ManagedBy, "workers", c.opts.Workers)
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		defer c.queue.ShutDown()
		workloop.Run(ctx, c.opts.Workers, c.queue, "Syncing HelmChart", c.redactedSync)
		<-ctx.Done()
	}()
	return nil
}

// startInformers installs the CRDs, registers the indexes and handlers, starts the informers
// and waits for their caches.
func (c *Controller) startInformers(ctx context.Context, factory informers.SharedInformerFactory) error {
	if err := c.installCRDs(ctx); err != nil {
		return fmt.Errorf("packaged: Helm controller: %w", err)
	}
	dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 0, c.opts.Namespace, nil)
	chartInf := dynFactory.ForResource(HelmChartResource())
	configInf := dynFactory.ForResource(HelmChartConfigResource())
	// Indexes go in before the informers start: AddIndexers fails on a running informer.
	if err := chartInf.Informer().AddIndexers(cache.Indexers{helmchart.SecretRefIndex: helmchart.ChartSecretRefs}); err != nil {
		return fmt.Errorf("packaged: indexing HelmCharts by Secret: %w", err)
	}
	if err := configInf.Informer().AddIndexers(cache.Indexers{helmchart.SecretRefIndex: helmchart.ConfigSecretRefs}); err != nil {
		return fmt.Errorf("packaged: indexing HelmChartConfigs by Secret: %w", err)
	}
	c.charts, c.chartsSynced, c.chartIndex = chartInf.Lister(), chartInf.Informer().HasSynced, chartInf.Informer().GetIndexer()
	c.configs, c.configsSynced, c.configIndex = configInf.Lister(), configInf.Informer().HasSynced, configInf.Informer().GetIndexer()
	handlers := cache.ResourceEventHandlerFuncs{AddFunc: c.enqueue, UpdateFunc: c.handleUpdate, DeleteFunc: c.enqueue}
	if _, err := chartInf.Informer().AddEventHandler(handlers); err != nil {
		return fmt.Errorf("packaged: watching HelmCharts: %w", err)
	}
	// A HelmChartConfig applies to the HelmChart of the same namespace and name (as in
	// K3s's helm-controller), so its key is the chart's key; removing it redeploys the defaults (k3s#5534).
	if _, err := configInf.Informer().AddEventHandler(handlers); err != nil {
		return fmt.Errorf("packaged: watching HelmChartConfigs: %w", err)
	}
	secretFactory, err := c.watchSecrets()
	if err != nil {
		return err
	}
	if factory != nil {
		factory.Start(ctx.Done())
	}
	dynFactory.Start(ctx.Done())
	secretFactory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.chartsSynced, c.configsSynced, c.secretsSynced) {
		return errors.New("packaged: HelmChart caches did not sync")
	}
	return nil
}

// redactedSync is syncHelmChart with URL credentials removed from its error, which is logged.
func (c *Controller) redactedSync(ctx context.Context, key cache.ObjectName) error {
	if err := c.syncs.Observe(c.syncHelmChart(ctx, key)); err != nil {
		return redactError(err)
	}
	return nil
}

// syncHelmChart reconciles the HelmChart key with its release.
func (c *Controller) syncHelmChart(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("helmChart", key.String())
	ctx = klog.NewContext(ctx, logger)
	obj, err := c.charts.ByNamespace(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// Gone: the finalizer already saw the release uninstalled, or it was never ours.
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting HelmChart %s: %w", key, err)
	}
	u := obj.(*unstructured.Unstructured)
	hc := &helmchart.HelmChart{}
	if err := helmchart.Decode(u, hc); err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonChartFailed, redactCredentials(err.Error()))
		return nil // a bad spec is permanent; the next change requeues it
	}
	switch helmchart.ClaimFor(hc, c.opts.ManagedBy) {
	case helmchart.ClaimIgnore:
		logger.V(4).Info("Not managing HelmChart")
		return nil
	case helmchart.ClaimTake:
		// Claim first and act on the update that follows, so two controllers that race
		// for the chart see one winner (the patch carries the resourceVersion).
		return helmchart.PatchMetadata(ctx, c.dyn, hc, map[string]string{AnnotationManagedBy: c.opts.ManagedBy}, hc.Finalizers)
	}
	if hc.DeletionTimestamp != nil {
		return c.remove(ctx, u, hc)
	}
	if !hc.HasFinalizer() {
		return helmchart.PatchMetadata(ctx, c.dyn, hc, nil, append(slices.Clone(hc.Finalizers), Finalizer))
	}
	if v := hc.Spec.HelmVersion; v != "" && v != "v3" {
		return c.fail(ctx, u, ReasonUnsupportedVersion, fmt.Sprintf("Unsupported version %q", v), nil)
	}
	want, err := c.desiredRelease(ctx, u, hc, key)
	if want == nil {
		return err // the failure is recorded; err is nil when only a change can fix it
	}
	return c.reconcileRelease(ctx, u, hc, want)
}

// desiredRelease is what a HelmChart's release should be made of.
type desiredRelease struct {
	// source is where the chart came from, named in Events.
	source chartSource
	chart  *chart.Chart
	values map[string]any
	// hash is the configHash the release is labelled with.
	hash string
	// policy is the failure policy, the HelmChartConfig's when it sets one.
	policy string
	// unsupported are the values keys k3snet's Traefik chart ignores (empty for any other
	// chart).
	unsupported []string
}

// desiredRelease loads hc's chart and merges its values. On failure it records the
// condition and Event itself and returns nil with the error to retry on: nil for a bad
// spec, which only a change fixes.
func (c *Controller) desiredRelease(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart, key cache.ObjectName) (*desiredRelease, error) {
	src, err := chartSourceFor(hc.Spec, c.opts.StaticDir)
	if err != nil {
		return nil, c.fail(ctx, u, ReasonUnsupportedChartSource, err.Error(), nil)
	}
	ch, chartID, err := c.chartOf(ctx, hc, src)
	if err != nil && src.kind == sourceInline {
		return nil, c.fail(ctx, u, ReasonChartFailed, err.Error(), nil)
	}
	if err != nil {
		// A repository may come back, a Secret may appear: retry with backoff.
		return nil, c.fail(ctx, u, ReasonChartDownloadFailed, err.Error(), err)
	}
	cfg, err := c.config(key)
	if err != nil {
		return nil, err
	}
	layers, hashed, err := c.layers(ctx, hc, cfg)
	if err != nil {
		return nil, c.fail(ctx, u, ReasonChartFailed, err.Error(), err)
	}
	vals, err := mergeValues(layers)
	if err != nil {
		return nil, c.fail(ctx, u, ReasonChartFailed, err.Error(), nil)
	}
	hashVals, err := mergeValues(hashed)
	if err != nil {
		return nil, c.fail(ctx, u, ReasonChartFailed, err.Error(), nil)
	}
	hash, err := configHash(chartID, hashVals, hc.TargetNamespace())
	if err != nil {
		return nil, err
	}
	policy := hc.Spec.FailurePolicy
	if cfg != nil && cfg.Spec.FailurePolicy != "" {
		policy = cfg.Spec.FailurePolicy // the config's policy overrides the chart's (as helm-controller)
	}
	want := &desiredRelease{source: src, chart: ch, values: vals, hash: hash, policy: policy}
	if isEmbeddedTraefik(src, ch) {
		want.unsupported = UnsupportedTraefikValues(vals)
	}
	return want, nil
}

// chartOf loads hc's chart and returns it with the identity configHash covers: for an
// inline chart chartContent itself (so releases installed before charts could be
// downloaded keep their hash), for a downloaded one the archive's digest.
func (c *Controller) chartOf(ctx context.Context, hc *helmchart.HelmChart, src chartSource) (*chart.Chart, string, error) {
	if src.kind == sourceInline {
		ch, err := loadChart(hc.Spec.ChartContent)
		return ch, hc.Spec.ChartContent, err
	}
	a, err := c.fetchAuth(ctx, hc, src)
	if err != nil {
		return nil, "", err
	}
	ch, data, err := c.fetcher.fetch(src, a)
	if err != nil {
		return nil, "", err
	}
	return ch, "sha256:" + sha256Hex(data), nil
}

// reconcileRelease brings hc's release to want with the Helm operation decideRelease
// picks, then records the outcome.
func (c *Controller) reconcileRelease(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart, want *desiredRelease) error {
	logger := klog.FromContext(ctx)
	rel, err := newHelmRelease(ctx, c.getter, hc)
	if err != nil {
		return err
	}
	last, err := rel.last()
	if err != nil {
		return err
	}
	act := decideRelease(last, want.hash, want.policy)
	logger.V(2).Info("Reconciling release", "action", act.String(), "hash", want.hash, "source", want.source.String())
	if len(want.unsupported) > 0 && (act == actionInstall || act == actionUpgrade || act == actionReinstall) {
		// Said once per new set of values, before the operation, so it is seen even when
		// the operation then fails.
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonUnsupportedValues, unsupportedValuesMessage(want.unsupported))
	}
	var reason, message string
	switch act {
	case actionNone:
		_, err := c.setFailed(ctx, u, false, "Deployed", "")
		return err
	case actionAbort:
		msg := fmt.Sprintf("release %s/%s is %s and the failure policy is abort: waiting for an operator", rel.ns, rel.name, last.Info.Status)
		return c.fail(ctx, u, ReasonChartFailed, msg, nil)
	case actionInstall:
		reason, message = ReasonChartInstalled, "Installed release %s/%s from %s"
	case actionUpgrade:
		reason, message = ReasonChartUpgraded, "Upgraded release %s/%s from %s"
	case actionReinstall:
		reason, message = ReasonChartReinstalled, "Reinstalled release %s/%s from %s"
	}
	err = rel.apply(ctx, act, last, hc, want.chart, want.values, want.hash)
	if err != nil {
		return c.fail(ctx, u, ReasonChartFailed, err.Error(), err)
	}
	logger.Info("Reconciled release", "action", act.String(), "namespace", rel.ns, "release", rel.name)
	if _, err := c.setFailed(ctx, u, false, "Deployed", ""); err != nil {
		return err
	}
	c.recorder.Eventf(u, corev1.EventTypeNormal, reason, message, rel.ns, rel.name, want.source)
	return nil
}

// remove uninstalls a deleted HelmChart's release and releases the finalizer.
func (c *Controller) remove(ctx context.Context, u *unstructured.Unstructured, hc *helmchart.HelmChart) error {
	if !hc.HasFinalizer() {
		return nil
	}
	rel, err := newHelmRelease(ctx, c.getter, hc)
	if err != nil {
		return err
	}
	if err := rel.uninstall(); err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonChartFailed, redactCredentials(err.Error()))
		return err
	}
	klog.FromContext(ctx).Info("Uninstalled release", "namespace", rel.ns, "release", rel.name)
	c.recorder.Eventf(u, corev1.EventTypeNormal, ReasonChartUninstalled, "Uninstalled release %s/%s", rel.ns, rel.name)
	rest := slices.DeleteFunc(slices.Clone(hc.Finalizers), func(f string) bool { return f == Finalizer })
	return helmchart.PatchMetadata(ctx, c.dyn, hc, nil, rest)
}
