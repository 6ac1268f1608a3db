package helm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// errUnsupportedChartSource marks a chart source k3snet does not install; the HelmChart
// gets condition Failed and an Event until its spec changes.
var errUnsupportedChartSource = errors.New("unsupported chart source")

// stableRepoURL is where a chart named stable/<name> without spec.repo comes from, as K3s's
// job adds the stable repository for such names (klipper-helm's entry script).
const stableRepoURL = "https://charts.helm.sh/stable"

// kubernetesAPIVar and staticURLPrefix name a chart served by the K3s server itself.
const (
	kubernetesAPIVar = helmchart.KubernetesAPIVar
	staticURLPrefix  = helmchart.StaticURLPrefix
)

// chartSourceKind says where a HelmChart's chart archive comes from.
type chartSourceKind int

const (
	// sourceInline: spec.chartContent, a base64 .tgz.
	sourceInline chartSourceKind = iota
	// sourceURL: spec.chart is an http(s) URL of a .tgz.
	sourceURL
	// sourceRepo: spec.chart is a chart name in the index.yaml of spec.repo.
	sourceRepo
	// sourceOCI: spec.chart is an oci:// reference.
	sourceOCI
	// sourceStatic: spec.chart is https://%{KUBERNETES_API}%/static/<path>, a file of the
	// static directory (Options.StaticDir).
	sourceStatic
)

// String names the kind in Events, as K3s's ApplyJob message names the source.
func (k chartSourceKind) String() string {
	return [...]string{"inline chartContent", "URL", "repository", "OCI registry", "static file"}[k]
}

// chartSource is where to get a HelmChart's chart from.
type chartSource struct {
	kind chartSourceKind
	// ref is the archive URL (sourceURL), the chart name (sourceRepo), the oci://
	// reference (sourceOCI) or the path under the static directory (sourceStatic).
	ref string
	// repo is the repository URL (sourceRepo).
	repo string
	// version is spec.version: an exact version, a semver constraint, or empty for the
	// newest (sourceRepo, sourceOCI; a URL names its version itself).
	version string
}

// String describes the source for messages and Events, without credentials a URL may
// carry.
func (s chartSource) String() string {
	version := "newest version"
	if s.version != "" {
		version = "version " + s.version
	}
	switch s.kind {
	case sourceRepo:
		return fmt.Sprintf("chart %s %s from repository %s", s.ref, version, redactCredentials(s.repo))
	case sourceOCI:
		return fmt.Sprintf("%s %s", redactCredentials(s.ref), version)
	case sourceURL:
		return redactCredentials(s.ref)
	case sourceStatic:
		return staticURLPrefix + s.ref
	default:
		return s.kind.String()
	}
}

// chartSourceFor decides where hc's chart comes from: chartContent overrides
// chart and version; an oci:// chart is pulled from its registry; an http(s) chart is the
// URL of an archive; any other chart is a name in spec.repo's index (stable/<name> without
// a repo meaning the stable repository, as K3s); https://%{KUBERNETES_API}%/static/<path>
// is a file of staticDir, the K3s server's static directory, when one is given. Sources
// k3snet cannot fetch wrap errUnsupportedChartSource.
func chartSourceFor(spec helmchart.HelmChartSpec, staticDir string) (chartSource, error) {
	if spec.ChartContent != "" {
		return chartSource{kind: sourceInline}, nil
	}
	chart := strings.TrimSpace(spec.Chart)
	if strings.Contains(chart, kubernetesAPIVar) {
		path, ok := strings.CutPrefix(chart, staticURLPrefix)
		switch {
		case !ok:
			return chartSource{}, fmt.Errorf("%w: chart %q: %s is only understood in %s<path>",
				errUnsupportedChartSource, chart, kubernetesAPIVar, staticURLPrefix)
		case staticDir == "":
			return chartSource{}, fmt.Errorf("%w: chart %q is a file of the K3s server's static directory, and none is configured; use chartContent",
				errUnsupportedChartSource, chart)
		case !filepath.IsLocal(path):
			return chartSource{}, fmt.Errorf("%w: chart %q: %q is not a path inside the static directory",
				errUnsupportedChartSource, chart, path)
		}
		return chartSource{kind: sourceStatic, ref: path}, nil
	}
	if strings.Contains(chart, "://") {
		return urlSource(chart, spec.Version)
	}
	if chart == "" {
		return chartSource{}, fmt.Errorf("%w: neither chart nor chartContent is set", errUnsupportedChartSource)
	}
	repo := strings.TrimSpace(spec.Repo)
	if repo == "" {
		name, ok := strings.CutPrefix(chart, "stable/")
		if !ok {
			return chartSource{}, fmt.Errorf("%w: chart %q is neither a URL nor an oci:// reference and repo is empty",
				errUnsupportedChartSource, chart)
		}
		repo, chart = stableRepoURL, name
	}
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return chartSource{}, fmt.Errorf("%w: repo %q is not an http or https URL", errUnsupportedChartSource, repo)
	}
	return chartSource{kind: sourceRepo, ref: chart, repo: repo, version: spec.Version}, nil
}

// urlSource classifies a chart given as a URL.
func urlSource(chart, version string) (chartSource, error) {
	u, err := url.Parse(chart)
	if err != nil {
		return chartSource{}, fmt.Errorf("%w: chart %q is not a URL: %v", errUnsupportedChartSource, chart, err)
	}
	switch {
	case u.Scheme == "oci" && u.Host != "":
		return chartSource{kind: sourceOCI, ref: chart, version: version}, nil
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
		return chartSource{kind: sourceURL, ref: chart}, nil
	}
	return chartSource{}, fmt.Errorf("%w: chart %q: only http, https and oci URLs are supported", errUnsupportedChartSource, chart)
}

// registryCredentials returns the username and password a .dockerconfigjson document holds
// for host (HelmChart spec.dockerRegistrySecret), or ok false when it has none. An entry is keyed
// by the host or by a URL of it; its password comes from username/password or from the
// base64 auth field ("user:password").
func registryCredentials(dockerConfig []byte, host string) (user, pass string, ok bool, err error) {
	var cfg struct {
		Auths map[string]struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Auth     string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(dockerConfig, &cfg); err != nil {
		return "", "", false, fmt.Errorf("parsing .dockerconfigjson: %w", err)
	}
	for key, a := range cfg.Auths {
		if registryHost(key) != host {
			continue
		}
		if a.Username != "" || a.Password != "" {
			return a.Username, a.Password, true, nil
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", "", false, fmt.Errorf("decoding the auth of registry %s: %w", key, err)
		}
		user, pass, found := strings.Cut(string(raw), ":")
		if !found {
			return "", "", false, fmt.Errorf("the auth of registry %s is not user:password", key)
		}
		return user, pass, true, nil
	}
	return "", "", false, nil
}

// registryHost reduces a .dockerconfigjson key ("host", "https://host/v1/") to its host.
func registryHost(key string) string {
	if u, err := url.Parse(key); err == nil && u.Host != "" {
		return u.Host
	}
	host, _, _ := strings.Cut(key, "/")
	return host
}

// appendCABundle appends the values of a repoCAConfigMap to bundle in key order, as K3s's
// job reads the mounted files in lexical order, each ended by a newline.
func appendCABundle(bundle []byte, data map[string]string) []byte {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := slices.Clone(bundle)
	if len(keys) > 0 && len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for _, k := range keys {
		out = append(out, data[k]...)
		if !strings.HasSuffix(data[k], "\n") {
			out = append(out, '\n')
		}
	}
	return out
}
