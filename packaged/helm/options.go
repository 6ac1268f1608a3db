package helm

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// Options configures the HelmController. The zero value of each field means K3s's default.
type Options struct {
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
func (o Options) Validate() error {
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
func (o Options) withDefaults() Options {
	if o.ManagedBy == "" {
		o.ManagedBy = DefaultManagedBy
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.DownloadTimeout == 0 {
		o.DownloadTimeout = defaultDownloadTimeout
	}
	return o
}
