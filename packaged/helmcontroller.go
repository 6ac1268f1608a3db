package packaged

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/workloop"
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
	// %{KUBERNETES_API}% chart that is not a file of HelmOptions.StaticDir (or with no
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

// helmChartResource is the HelmChart API.
func helmChartResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}
}

// helmChartConfigResource is the HelmChartConfig API.
func helmChartConfigResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmchartconfigs"}
}

// HelmController installs helm.cattle.io/v1 HelmCharts in-process with the Helm SDK (spec
// A.8–A.10): install, upgrade when the merged values or the chart change, uninstall behind
// the finalizer when the HelmChart is deleted. It is separate from Controller because it
// needs a rest.Config for Helm and can be disabled on its own (K3s's
// --disable-helm-controller). Build it with NewHelmController and run it with Start after
// Controller.Start has installed the HelmChart and HelmChartConfig CRDs.
type HelmController struct {
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
	opts HelmOptions
	// getter hands the Helm SDK the controller's config and shared discovery.
	getter *restGetter
	// charts and configs list HelmCharts and HelmChartConfigs; Start sets them.
	charts, configs             cache.GenericLister
	chartsSynced, configsSynced cache.InformerSynced
	// chartIndex and configIndex map a Secret's "<namespace>/<name>" to the HelmCharts
	// and HelmChartConfigs that read it (index secretRefIndex).
	chartIndex, configIndex cache.Indexer
	// secretsSynced reports the Secret metadata cache synced.
	secretsSynced cache.InformerSynced
	// queue holds the keys of HelmCharts to reconcile.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder sends Events on HelmCharts; Start replaces the no-op one with a broadcaster's.
	recorder record.EventRecorder
	// syncs counts HelmChart syncs, by result.
	syncs resultCounter
}

// NewHelmController returns a HelmController that reads and writes through client and a
// dynamic client built from opts.Config.
func NewHelmController(client kubernetes.Interface, opts HelmOptions) (*HelmController, error) {
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
	syncs, err := newResultCounter(opts.MetricsRegistry, "helmchart_syncs_total", "HelmChart syncs of the Helm controller, by result (success or error).")
	if err != nil {
		return nil, fmt.Errorf("packaged: %w", err)
	}
	return &HelmController{
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
func (c *HelmController) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
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

// startInformers registers the indexes and handlers, starts the informers and waits for
// their caches.
func (c *HelmController) startInformers(ctx context.Context, factory informers.SharedInformerFactory) error {
	dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 0, c.opts.Namespace, nil)
	chartInf := dynFactory.ForResource(helmChartResource())
	configInf := dynFactory.ForResource(helmChartConfigResource())
	// Indexes go in before the informers start: AddIndexers fails on a running informer.
	if err := chartInf.Informer().AddIndexers(cache.Indexers{secretRefIndex: chartSecretRefs}); err != nil {
		return fmt.Errorf("packaged: indexing HelmCharts by Secret: %w", err)
	}
	if err := configInf.Informer().AddIndexers(cache.Indexers{secretRefIndex: configSecretRefs}); err != nil {
		return fmt.Errorf("packaged: indexing HelmChartConfigs by Secret: %w", err)
	}
	c.charts, c.chartsSynced, c.chartIndex = chartInf.Lister(), chartInf.Informer().HasSynced, chartInf.Informer().GetIndexer()
	c.configs, c.configsSynced, c.configIndex = configInf.Lister(), configInf.Informer().HasSynced, configInf.Informer().GetIndexer()
	handlers := cache.ResourceEventHandlerFuncs{AddFunc: c.enqueue, UpdateFunc: c.handleUpdate, DeleteFunc: c.enqueue}
	if _, err := chartInf.Informer().AddEventHandler(handlers); err != nil {
		return fmt.Errorf("packaged: watching HelmCharts: %w", err)
	}
	// A HelmChartConfig applies to the HelmChart of the same namespace and name (spec
	// A.8), so its key is the chart's key; removing it redeploys the defaults (k3s#5534).
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

// watchSecrets registers the Secret handler on an informer of Secrets' metadata only, in
// the controller's namespace, without Helm's release records. Values and auth Secrets
// are read with a GET when a chart syncs, so their data never sits in a cache, and the
// release records, which hold whole rendered manifests and change with every upgrade,
// are not even watched: no HelmChart can usefully name one.
func (c *HelmController) watchSecrets() (metadatainformer.SharedInformerFactory, error) {
	f := metadatainformer.NewFilteredSharedInformerFactory(c.meta, 0, c.opts.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermNotEqualSelector("type", helmReleaseSecretType).String()
	})
	inf := f.ForResource(corev1.SchemeGroupVersion.WithResource("secrets")).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleSecret,
		UpdateFunc: c.handleSecretUpdate,
		DeleteFunc: c.handleSecret,
	}); err != nil {
		return nil, fmt.Errorf("packaged: watching Secrets: %w", err)
	}
	c.secretsSynced = inf.HasSynced
	return f, nil
}

// enqueue queues the key of a HelmChart or HelmChartConfig.
func (c *HelmController) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
}

// handleUpdate drops resyncs, which change nothing.
func (c *HelmController) handleUpdate(oldObj, newObj any) {
	if !isResync(oldObj, newObj) {
		c.enqueue(newObj)
	}
}

// isResync reports whether an update is an informer resync: the same resourceVersion.
func isResync(oldObj, newObj any) bool {
	o, ok1 := oldObj.(metav1.Object)
	n, ok2 := newObj.(metav1.Object)
	return ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion()
}

// handleSecret queues the HelmCharts that read the Secret (index secretRefIndex): the
// charts naming it and the charts whose HelmChartConfig names it.
func (c *HelmController) handleSecret(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, idx := range []cache.Indexer{c.chartIndex, c.configIndex} {
		objs, err := idx.ByIndex(secretRefIndex, key)
		if err != nil {
			utilruntime.HandleError(err)
			continue
		}
		for _, o := range objs {
			c.enqueue(o)
		}
	}
}

// handleSecretUpdate drops resyncs, which change nothing.
func (c *HelmController) handleSecretUpdate(oldObj, newObj any) {
	if !isResync(oldObj, newObj) {
		c.handleSecret(newObj)
	}
}

// redactedSync is syncHelmChart with URL credentials removed from its error, which is logged.
func (c *HelmController) redactedSync(ctx context.Context, key cache.ObjectName) error {
	if err := c.syncs.observe(c.syncHelmChart(ctx, key)); err != nil {
		return redactError(err)
	}
	return nil
}

// syncHelmChart reconciles the HelmChart key with its release.
func (c *HelmController) syncHelmChart(ctx context.Context, key cache.ObjectName) error {
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
	hc := &helmChart{}
	if err := decodeObject(u, hc); err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonChartFailed, redactCredentials(err.Error()))
		return nil // a bad spec is permanent; the next change requeues it
	}
	switch claimFor(hc, c.opts.ManagedBy) {
	case claimIgnore:
		logger.V(4).Info("Not managing HelmChart")
		return nil
	case claimTake:
		// Claim first and act on the update that follows, so two controllers that race
		// for the chart see one winner (the patch carries the resourceVersion).
		return c.patchMetadata(ctx, hc, map[string]string{annotationManagedBy: c.opts.ManagedBy}, hc.Finalizers)
	}
	if hc.DeletionTimestamp != nil {
		return c.remove(ctx, u, hc)
	}
	if !hc.hasFinalizer() {
		return c.patchMetadata(ctx, hc, nil, append(slices.Clone(hc.Finalizers), finalizerHelmChart))
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
func (c *HelmController) desiredRelease(ctx context.Context, u *unstructured.Unstructured, hc *helmChart, key cache.ObjectName) (*desiredRelease, error) {
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
	hash, err := configHash(chartID, hashVals, hc.targetNamespace())
	if err != nil {
		return nil, err
	}
	policy := hc.Spec.FailurePolicy
	if cfg != nil && cfg.Spec.FailurePolicy != "" {
		policy = cfg.Spec.FailurePolicy // the config's policy overrides the chart's (as helm-controller)
	}
	want := &desiredRelease{source: src, chart: ch, values: vals, hash: hash, policy: policy}
	if isEmbeddedTraefik(src, ch) {
		want.unsupported = unsupportedTraefikValues(vals)
	}
	return want, nil
}

// chartOf loads hc's chart and returns it with the identity configHash covers: for an
// inline chart chartContent itself (so releases installed before charts could be
// downloaded keep their hash), for a downloaded one the archive's digest.
func (c *HelmController) chartOf(ctx context.Context, hc *helmChart, src chartSource) (*chart.Chart, string, error) {
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

// fetchAuth reads what reaching src takes from hc's spec and the Secret and ConfigMap it
// names in its own namespace: repoCA and repoCAConfigMap, authSecret
// (username/password or tls.crt/tls.key), and for OCI dockerRegistrySecret when
// authSecret gives no password.
func (c *HelmController) fetchAuth(ctx context.Context, hc *helmChart, src chartSource) (fetchAuth, error) {
	a := fetchAuth{
		caPEM:                 []byte(hc.Spec.RepoCA),
		passCredentials:       hc.Spec.AuthPassCredentials,
		insecureSkipTLSVerify: hc.Spec.InsecureSkipTLSVerify,
		plainHTTP:             hc.Spec.PlainHTTP,
	}
	if name := refName(hc.Spec.RepoCAConfigMap); name != "" {
		cm, err := c.client.CoreV1().ConfigMaps(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return a, fmt.Errorf("reading repoCAConfigMap %s/%s: %w", hc.Namespace, name, err)
		}
		a.caPEM = appendCABundle(a.caPEM, cm.Data)
	}
	if name := refName(hc.Spec.AuthSecret); name != "" {
		s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return a, fmt.Errorf("reading authSecret %s/%s: %w", hc.Namespace, name, err)
		}
		a.username, a.password = string(s.Data[corev1.BasicAuthUsernameKey]), string(s.Data[corev1.BasicAuthPasswordKey])
		a.certPEM, a.keyPEM = s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	}
	if src.kind == sourceOCI && a.password == "" {
		var err error
		if a.username, a.password, err = c.registryAuth(ctx, hc, src); err != nil {
			return a, err
		}
	}
	return a, nil
}

// registryAuth returns the credentials dockerRegistrySecret holds for src's registry, or
// none.
func (c *HelmController) registryAuth(ctx context.Context, hc *helmChart, src chartSource) (user, pass string, err error) {
	name := refName(hc.Spec.DockerRegistrySecret)
	if name == "" {
		return "", "", nil
	}
	s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("reading dockerRegistrySecret %s/%s: %w", hc.Namespace, name, err)
	}
	host := ""
	if u, err := url.Parse(src.ref); err == nil {
		host = u.Host
	}
	user, pass, _, err = registryCredentials(s.Data[corev1.DockerConfigJsonKey], host)
	if err != nil {
		return "", "", fmt.Errorf("dockerRegistrySecret %s/%s: %w", hc.Namespace, name, err)
	}
	return user, pass, nil
}

// reconcileRelease brings hc's release to want with the Helm operation decideRelease
// picks, then records the outcome.
func (c *HelmController) reconcileRelease(ctx context.Context, u *unstructured.Unstructured, hc *helmChart, want *desiredRelease) error {
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
	if act == actionUpgrade && last.Info.Status.IsPending() {
		if err := rel.markFailed(last); err != nil {
			return err
		}
	}
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
		err = rel.install(ctx, hc, want.chart, want.values, want.hash)
		reason, message = ReasonChartInstalled, "Installed release %s/%s from %s"
	case actionUpgrade:
		err = rel.upgrade(ctx, hc, want.chart, want.values, want.hash)
		reason, message = ReasonChartUpgraded, "Upgraded release %s/%s from %s"
	case actionReinstall:
		err = rel.uninstall()
		if err == nil {
			err = rel.install(ctx, hc, want.chart, want.values, want.hash)
		}
		reason, message = ReasonChartReinstalled, "Reinstalled release %s/%s from %s"
	}
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
func (c *HelmController) remove(ctx context.Context, u *unstructured.Unstructured, hc *helmChart) error {
	if !hc.hasFinalizer() {
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
	rest := slices.DeleteFunc(slices.Clone(hc.Finalizers), func(f string) bool { return f == finalizerHelmChart })
	return c.patchMetadata(ctx, hc, nil, rest)
}

// config returns the HelmChartConfig of the same namespace and name, or nil.
func (c *HelmController) config(key cache.ObjectName) (*helmChartConfig, error) {
	obj, err := c.configs.ByNamespace(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting HelmChartConfig %s: %w", key, err)
	}
	cfg := &helmChartConfig{}
	if err := decodeObject(obj.(*unstructured.Unstructured), cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// layers gathers the values layers of hc and its config, reading values Secrets from the
// HelmChart's namespace, and a copy of them for configHash without the Secrets marked
// ignoreUpdates. Their changes do not redeploy, and leaving them out of the
// hash keeps it so after a restart too; the next change of anything else deploys their
// current contents, as K3s's next job run mounts them.
func (c *HelmController) layers(ctx context.Context, hc *helmChart, cfg *helmChartConfig) (all, hashed valuesLayers, err error) {
	all = valuesLayers{chartValuesContent: hc.Spec.ValuesContent, chartValues: hc.Spec.Values, set: hc.Spec.Set}
	var chartWatched, configWatched []string
	if all.chartSecrets, chartWatched, err = c.secretDocs(ctx, hc, hc.Spec.ValuesSecrets); err != nil {
		return all, hashed, err
	}
	if cfg != nil {
		all.configValuesContent, all.configValues = cfg.Spec.ValuesContent, cfg.Spec.Values
		if all.configSecrets, configWatched, err = c.secretDocs(ctx, hc, cfg.Spec.ValuesSecrets); err != nil {
			return all, hashed, err
		}
	}
	hashed = all
	hashed.chartSecrets, hashed.configSecrets = chartWatched, configWatched
	return all, hashed, nil
}

// secretDocs reads the values documents of refs, Secrets and keys in list order, and
// returns them all and those of Secrets without ignoreUpdates. A Secret named
// chart-values-<chart> or listing no keys is ignored; a missing Secret whose
// reference has ignoreUpdates is skipped, as K3s mounts it optional. The Secret informer
// re-syncs the chart when a Secret it needs appears or changes.
func (c *HelmController) secretDocs(ctx context.Context, hc *helmChart, refs []valuesSecret) (all, watched []string, err error) {
	for _, ref := range refs {
		if !usedValuesSecret(hc.Name, ref) {
			continue
		}
		s, err := c.client.CoreV1().Secrets(hc.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ref.IgnoreUpdates {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading values Secret %s/%s: %w", hc.Namespace, ref.Name, err)
		}
		for _, k := range ref.Keys {
			v, ok := s.Data[k]
			if !ok {
				continue
			}
			all = append(all, string(v))
			if !ref.IgnoreUpdates {
				watched = append(watched, string(v))
			}
		}
	}
	return all, watched, nil
}

// fail records a failure: condition Failed True, a log line, and a Warning Event with the
// same reason when the condition changed (emit on change: a retry that fails the same way
// stays quiet). It returns retryErr, nil for a permanent failure that waits for a change.
func (c *HelmController) fail(ctx context.Context, u *unstructured.Unstructured, reason, message string, retryErr error) error {
	message, retryErr = redactCredentials(message), redactError(retryErr)
	klog.FromContext(ctx).Info("HelmChart failed", "reason", reason, "message", message)
	changed, err := c.setFailed(ctx, u, true, reason, message)
	if err != nil {
		return errors.Join(retryErr, err)
	}
	if changed {
		c.recorder.Event(u, corev1.EventTypeWarning, reason, message)
	}
	return retryErr
}

// setFailed writes condition Failed through the status subresource when it differs, and
// reports whether it wrote. K3s also writes JobCreated and jobName, which have no meaning
// without a job.
func (c *HelmController) setFailed(ctx context.Context, u *unstructured.Unstructured, failed bool, reason, message string) (bool, error) {
	status := metav1.ConditionFalse
	if failed {
		status = metav1.ConditionTrue
	}
	want := map[string]any{"type": conditionFailed, "status": string(status), "reason": reason, "message": message}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	out := make([]any, 0, len(conds)+1)
	for _, cond := range conds {
		if m, ok := cond.(map[string]any); ok && m["type"] == conditionFailed {
			if equalCondition(m, want) {
				return false, nil
			}
			continue
		}
		out = append(out, cond)
	}
	out = append(out, want)
	cp := u.DeepCopy()
	if err := unstructured.SetNestedSlice(cp.Object, out, "status", "conditions"); err != nil {
		return false, fmt.Errorf("setting HelmChart %s/%s conditions: %w", u.GetNamespace(), u.GetName(), err)
	}
	if _, err := c.dyn.Resource(helmChartResource()).Namespace(u.GetNamespace()).UpdateStatus(ctx, cp, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("updating HelmChart %s/%s status: %w", u.GetNamespace(), u.GetName(), err)
	}
	return true, nil
}

// equalCondition compares the fields setFailed writes.
func equalCondition(a, b map[string]any) bool {
	for _, k := range []string{"type", "status", "reason", "message"} {
		av, _ := a[k].(string)
		bv, _ := b[k].(string)
		if av != bv {
			return false
		}
	}
	return true
}

// patchMetadata merges annotations into hc's and sets its finalizers, guarded by its
// resourceVersion so a concurrent change wins and the informer requeues the chart.
func (c *HelmController) patchMetadata(ctx context.Context, hc *helmChart, annotations map[string]string, finalizers []string) error {
	meta := map[string]any{"resourceVersion": hc.ResourceVersion, "finalizers": finalizers}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encoding HelmChart %s/%s patch: %w", hc.Namespace, hc.Name, err)
	}
	_, err = c.dyn.Resource(helmChartResource()).Namespace(hc.Namespace).Patch(ctx, hc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // the informer delivers the newer object (or the deletion)
	}
	if err != nil {
		return fmt.Errorf("patching HelmChart %s/%s metadata: %w", hc.Namespace, hc.Name, err)
	}
	return nil
}
