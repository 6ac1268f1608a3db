package helm

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// defaultHelmTimeout bounds one Helm operation's waits (hooks), as helm's own default.
const defaultHelmTimeout = 300 * time.Second

// maxHistory is how many release records an upgrade keeps, the helm CLI's default, which
// K3s's job uses.
const maxHistory = 10

// restGetter gives the Helm SDK the controller's rest.Config instead of a kubeconfig file.
// All namespaces share one cached discovery client and REST mapper, which Helm resets
// after it installs CRDs.
type restGetter struct {
	config    *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	namespace string
}

var _ genericclioptions.RESTClientGetter = (*restGetter)(nil)

// newRESTGetter builds a getter for cfg.
func newRESTGetter(cfg *rest.Config) (*restGetter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &restGetter{config: cfg, discovery: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)}, nil
}

// inNamespace returns a getter whose default namespace is ns.
func (g *restGetter) inNamespace(ns string) *restGetter {
	c := *g
	c.namespace = ns
	return &c
}

// ToRESTConfig returns a copy of the controller's config.
func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

// ToDiscoveryClient returns the shared cached discovery client.
func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

// ToRESTMapper returns the shared REST mapper.
func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

// ToRawKubeConfigLoader returns a loader that only knows the default namespace and config.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return namespaceConfig{g} }

// namespaceConfig is the clientcmd.ClientConfig of a restGetter: there is no kubeconfig.
type namespaceConfig struct{ g *restGetter }

var _ clientcmd.ClientConfig = namespaceConfig{}

// RawConfig returns an empty kubeconfig: the config does not come from one.
func (n namespaceConfig) RawConfig() (clientcmdapi.Config, error) {
	return *clientcmdapi.NewConfig(), nil
}

// ClientConfig returns a copy of the controller's config.
func (n namespaceConfig) ClientConfig() (*rest.Config, error) { return n.g.ToRESTConfig() }

// Namespace returns the getter's namespace.
func (n namespaceConfig) Namespace() (string, bool, error) { return n.g.namespace, false, nil }

// ConfigAccess returns the default loading rules; Helm does not write kubeconfigs here.
func (n namespaceConfig) ConfigAccess() clientcmd.ConfigAccess {
	return clientcmd.NewDefaultClientConfigLoadingRules()
}

// loadChart decodes chartContent (base64 .tgz, the HelmChart field) into a chart.
func loadChart(content string) (*chart.Chart, error) {
	data, err := base64.StdEncoding.DecodeString(content)
	if err != nil {
		return nil, fmt.Errorf("decoding chartContent: %w", err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("loading chartContent: %w", err)
	}
	return ch, nil
}

// helmRelease runs Helm operations for one HelmChart's release in its target namespace,
// with release records kept by the storage driver the HelmChart names (secrets by default),
// exactly where the helm CLI looks, so `helm list -n <ns>` shows them.
type helmRelease struct {
	cfg     *action.Configuration
	name    string
	ns      string
	timeout time.Duration
}

// newHelmRelease prepares Helm for hc's release.
func newHelmRelease(ctx context.Context, getter *restGetter, hc *helmchart.HelmChart) (*helmRelease, error) {
	logger := klog.FromContext(ctx)
	ns := hc.TargetNamespace()
	drv := hc.Spec.Driver
	if drv == "" {
		drv = "secret"
	}
	cfg := &action.Configuration{}
	debug := func(format string, v ...any) {
		if l := logger.V(4); l.Enabled() { // Helm logs every step; format only when shown
			l.Info(redactCredentials(fmt.Sprintf(format, v...)))
		}
	}
	if err := cfg.Init(getter.inNamespace(ns), ns, drv, debug); err != nil {
		return nil, fmt.Errorf("initialising Helm for release %s/%s: %w", ns, hc.Name, err)
	}
	timeout := defaultHelmTimeout
	if hc.Spec.Timeout != nil && hc.Spec.Timeout.Duration > 0 {
		timeout = hc.Spec.Timeout.Duration
	}
	return &helmRelease{cfg: cfg, name: hc.Name, ns: ns, timeout: timeout}, nil
}

// last returns the newest release record, or nil when there is none.
func (r *helmRelease) last() (*release.Release, error) {
	h, err := r.cfg.Releases.History(r.name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(h) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the history of release %s/%s: %w", r.ns, r.name, err)
	}
	newest := h[0]
	for _, rel := range h[1:] {
		if rel.Version > newest.Version {
			newest = rel
		}
	}
	return newest, nil
}

// revision is the revision of rel, the newest release, 0 when there is none.
func revision(rel *release.Release) int {
	if rel == nil {
		return 0
	}
	return rel.Version
}

// markFailed sets a pending release to failed, as K3s's job does with `helm set-status`
// (klipper-helm's entry script): a pending record left by an interrupted operation blocks every later one.
func (r *helmRelease) markFailed(rel *release.Release) error {
	rel.SetStatus(release.StatusFailed, "marked failed by k3snet: operation interrupted")
	if err := r.cfg.Releases.Update(rel); err != nil {
		return fmt.Errorf("marking release %s/%s failed: %w", r.ns, r.name, err)
	}
	return nil
}

// apply runs act, an install, upgrade or reinstall that decideRelease picked for last,
// the newest release. A pending release is marked failed before its upgrade, as Helm
// refuses to upgrade one.
func (r *helmRelease) apply(ctx context.Context, act releaseAction, last *release.Release, hc *helmchart.HelmChart, ch *chart.Chart, vals map[string]any, hash string) error {
	switch act {
	case actionInstall:
		return r.install(ctx, hc, ch, vals, hash)
	case actionUpgrade:
		if last != nil && last.Info != nil && last.Info.Status.IsPending() {
			if err := r.markFailed(last); err != nil {
				return err
			}
		}
		return r.upgrade(ctx, hc, ch, vals, hash)
	case actionReinstall:
		if err := r.uninstall(); err != nil {
			return err
		}
		return r.install(ctx, hc, ch, vals, hash)
	}
	return fmt.Errorf("release %s/%s: nothing to apply for action %s", r.ns, r.name, act)
}

// install installs ch with vals, recording hash on the release.
func (r *helmRelease) install(ctx context.Context, hc *helmchart.HelmChart, ch *chart.Chart, vals map[string]any, hash string) error {
	in := action.NewInstall(r.cfg)
	in.ReleaseName = r.name
	in.Namespace = r.ns
	in.CreateNamespace = hc.Spec.CreateNamespace
	in.TakeOwnership = hc.Spec.TakeOwnership
	in.Timeout = r.timeout
	in.Labels = map[string]string{helmchart.LabelConfigHash: hash}
	if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
		return fmt.Errorf("installing release %s/%s: %w", r.ns, r.name, err)
	}
	return nil
}

// upgrade upgrades the release to ch with vals, recording hash on the release. Values are
// not reused from the previous release: every layer is passed again, as K3s's job does.
func (r *helmRelease) upgrade(ctx context.Context, hc *helmchart.HelmChart, ch *chart.Chart, vals map[string]any, hash string) error {
	up := action.NewUpgrade(r.cfg)
	up.Namespace = r.ns
	up.TakeOwnership = hc.Spec.TakeOwnership
	up.Timeout = r.timeout
	up.Labels = map[string]string{helmchart.LabelConfigHash: hash}
	up.MaxHistory = maxHistory
	if _, err := up.RunWithContext(ctx, r.name, ch, vals); err != nil {
		return fmt.Errorf("upgrading release %s/%s: %w", r.ns, r.name, err)
	}
	return nil
}

// uninstall removes the release and its records; no release is success.
func (r *helmRelease) uninstall() error {
	un := action.NewUninstall(r.cfg)
	un.IgnoreNotFound = true
	un.Timeout = r.timeout
	if _, err := un.Run(r.name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstalling release %s/%s: %w", r.ns, r.name, err)
	}
	return nil
}
