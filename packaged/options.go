package packaged

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// Options configures the packaged components controller. The zero value of each field means K3s's default.
type Options struct {
	// ManifestsDir is the directory whose manifests are applied
	// (K3s: <data-dir>/server/manifests).
	ManifestsDir string
	// Dynamic is the client the deploy controller applies arbitrary kinds with. Required.
	Dynamic dynamic.Interface
	// Disables holds the names given to --disable: files whose basename without extension,
	// or any parent directory, is a key are uninstalled, as K3s's --disable does. Pass the same map to Stage.
	Disables map[string]bool
	// Interval is the time between passes when no file changes. Default 15 s.
	Interval time.Duration
	// DisableNodeHosts and DisableDeploy split Start in two, as K3s does: every server runs
	// the deploy loop over its own manifests directory, while NodeHosts runs on one server
	// at a time, beside the Helm controller. Either way Start installs the CRDs.
	DisableNodeHosts, DisableDeploy bool
	// EventRecorder records the Events on Addons and, for NodeHosts, on Nodes. When nil, Start
	// builds one that writes through the controller's client and stops with its context.
	EventRecorder record.EventRecorder
	// MetricsRegistry, if set, gets packaged_manifest_applies_total (manifest files applied,
	// by result). One registry takes one Controller.
	MetricsRegistry metrics.KubeRegistry
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.ManifestsDir == "" {
		errs = append(errs, errors.New("ManifestsDir is required"))
	}
	if o.Dynamic == nil {
		errs = append(errs, errors.New("a dynamic client (Dynamic) is required"))
	}
	return errors.Join(errs...)
}

// HelmOptions configures the HelmController. The zero value of each field means K3s's default.
type HelmOptions struct {
	// Config is the client configuration the Helm SDK talks to the API server with. Required.
	Config *rest.Config
	// ManagedBy is the controller name written to and matched against the
	// helmcharts.cattle.io/managed-by annotation. Default "helm-controller", K3s's
	// name, so charts a K3s server claimed are managed after a move to k3snet. Pick another
	// name to run beside a K3s helm-controller; each then manages only its own charts.
	ManagedBy string
	// Namespace limits the controller to HelmCharts of one namespace. Default: all (K3s).
	Namespace string
	// Workers is the number of charts installed in parallel. Default 1.
	Workers int
	// DownloadTimeout bounds one download of a chart or a repository index. Default 60s.
	// Each download may also read at most 256 MiB (ChartDownloadFailed past that).
	DownloadTimeout time.Duration
	// StaticDir is the directory a K3s server serves at https://<apiserver>/static/
	// (<data-dir>/server/static). A chart https://%{KUBERNETES_API}%/static/<path>, as K3s's
	// own manifests name theirs, is read from StaticDir/<path>. Empty: such charts fail with
	// UnsupportedChartSource.
	StaticDir string
	// EventRecorder records the Events on HelmCharts. When nil, Start builds one that writes
	// through the controller's client and stops with its context.
	EventRecorder record.EventRecorder
	// MetricsRegistry, if set, gets packaged_helmchart_syncs_total (HelmChart syncs, by
	// result). One registry takes one HelmController.
	MetricsRegistry metrics.KubeRegistry
}

// Validate reports every invalid field at once.
func (o HelmOptions) Validate() error {
	var errs []error
	if o.Config == nil {
		errs = append(errs, errors.New("a rest.Config (Config) is required"))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("the number of Workers must not be negative, got %d", o.Workers))
	}
	if o.DownloadTimeout < 0 {
		errs = append(errs, fmt.Errorf("DownloadTimeout must not be negative, got %s", o.DownloadTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults returns o with every unset field set to its default.
func (o HelmOptions) withDefaults() HelmOptions {
	if o.ManagedBy == "" {
		o.ManagedBy = defaultManagedBy
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.DownloadTimeout == 0 {
		o.DownloadTimeout = defaultDownloadTimeout
	}
	return o
}
