package packaged

import (
	"errors"
	"time"

	"k8s.io/client-go/dynamic"
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
