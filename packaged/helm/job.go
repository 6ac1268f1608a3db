package helm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// This file is K3s's helm job, the klipper-helm image's entry script, in Go on this package's
// Helm code: package helmjob writes the Job, and cmd/klipper-helm runs RunJob in its pod.

// ErrHelmV2 is returned for HELM_VERSION=v2, which K3s's job refuses (Helm 2 is end of life);
// the job exits 64 on it.
var ErrHelmV2 = errors.New("helm v2 is no longer supported")

// JobEnv is the environment K3s's helm-controller gives its job.
type JobEnv struct {
	// Name is the HelmChart's name, which is the release's (NAME).
	Name string
	// ChartNamespace is the HelmChart's namespace (CHART_NAMESPACE).
	ChartNamespace string
	// Chart is the chart: a URL, an oci:// reference, <NAME>/<chart> in REPO, or empty for
	// an inline chart (CHART).
	Chart, Version, Repo string
	// HelmDriver keeps release records: secret (default) or configmap (HELM_DRIVER).
	HelmDriver string
	// HelmVersion is v3 or empty; v2 is refused (HELM_VERSION).
	HelmVersion string
	// TargetNamespace is where the release goes (TARGET_NAMESPACE).
	TargetNamespace                                       string
	AuthPassCredentials, InsecureSkipTLSVerify, PlainHTTP bool
	// Timeout bounds each Helm operation; 0 is Helm's default of 300 s (TIMEOUT).
	Timeout time.Duration
	// FailurePolicy is abort, reinstall (default) or retry (FAILURE_POLICY).
	FailurePolicy string
	// ConfigHash is the job's configHash, "SHA256=<HEX>"; the release is labelled with it
	// so the next job with the same hash does nothing (CONFIG_HASH).
	ConfigHash string
	// ExpectedRevision is the release revision the controller saw when it wrote the job, 0
	// for none; HasExpectedRevision says whether it was given (EXPECTED_RELEASE_REVISION).
	ExpectedRevision    int
	HasExpectedRevision bool
	// APIServer is host:port of the API server, what %{KUBERNETES_API}% stands for
	// (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT).
	APIServer string
}

// JobEnvFrom reads the job's environment through getenv (os.Getenv) and reports every bad
// value at once.
func JobEnvFrom(getenv func(string) string) (JobEnv, error) {
	var errs []error
	flag := func(name string) bool {
		v := getenv(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a boolean", name, v))
		}
		return b
	}
	env := JobEnv{
		Name: getenv("NAME"), ChartNamespace: getenv("CHART_NAMESPACE"), Chart: getenv("CHART"),
		Version: getenv("VERSION"), Repo: getenv("REPO"), HelmDriver: getenv("HELM_DRIVER"),
		HelmVersion: getenv("HELM_VERSION"), TargetNamespace: getenv("TARGET_NAMESPACE"),
		AuthPassCredentials: flag("AUTH_PASS_CREDENTIALS"), InsecureSkipTLSVerify: flag("INSECURE_SKIP_TLS_VERIFY"),
		PlainHTTP: flag("PLAIN_HTTP"), FailurePolicy: getenv("FAILURE_POLICY"), ConfigHash: getenv("CONFIG_HASH"),
	}
	if env.Name == "" {
		errs = append(errs, errors.New("NAME is empty"))
	}
	if env.ChartNamespace == "" {
		errs = append(errs, errors.New("CHART_NAMESPACE is empty"))
	}
	if env.TargetNamespace == "" {
		env.TargetNamespace = env.ChartNamespace
	}
	switch env.FailurePolicy {
	case "", helmchart.FailurePolicyAbort, helmchart.FailurePolicyReinstall, helmchart.FailurePolicyRetry:
	default:
		errs = append(errs, fmt.Errorf("FAILURE_POLICY=%q is none of abort, reinstall and retry", env.FailurePolicy))
	}
	if v := getenv("TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("TIMEOUT=%q is not a duration", v))
		}
		env.Timeout = d
	}
	if v := getenv("EXPECTED_RELEASE_REVISION"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("EXPECTED_RELEASE_REVISION=%q is not a revision", v))
		}
		env.ExpectedRevision, env.HasExpectedRevision = n, true
	}
	if host := getenv("KUBERNETES_SERVICE_HOST"); host != "" {
		env.APIServer = net.JoinHostPort(host, getenv("KUBERNETES_SERVICE_PORT"))
	}
	return env, errors.Join(errs...)
}

// JobArgs are the job's arguments: `delete`, or `install` with Helm's flags as K3s's
// controller writes them.
type JobArgs struct {
	Delete                         bool
	Namespace                      string
	CreateNamespace, TakeOwnership bool
	Version                        string
	// Set are the --set and --set-string arguments, applied in order after the values files.
	Set []helmchart.SetArg
}

// ParseJobArgs parses the job's arguments.
func ParseJobArgs(args []string) (JobArgs, error) {
	if len(args) == 0 {
		return JobArgs{}, errors.New("no command: want install or delete")
	}
	switch args[0] {
	case "delete":
		if len(args) > 1 {
			return JobArgs{}, fmt.Errorf("delete takes no arguments, got %q", args[1:])
		}
		return JobArgs{Delete: true}, nil
	case "install":
	default:
		return JobArgs{}, fmt.Errorf("unknown command %q: want install or delete", args[0])
	}
	var a JobArgs
	rest := args[1:]
	value := func(flag string) (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("%s needs a value", flag)
		}
		v := rest[1]
		rest = rest[1:]
		return v, nil
	}
	for ; len(rest) > 0; rest = rest[1:] {
		var err error
		switch flag := rest[0]; flag {
		case "--namespace":
			a.Namespace, err = value(flag)
		case "--create-namespace":
			a.CreateNamespace = true
		case "--take-ownership":
			a.TakeOwnership = true
		case "--version":
			a.Version, err = value(flag)
		case "--set", "--set-string":
			var kv string
			if kv, err = value(flag); err == nil {
				a.Set = append(a.Set, helmchart.SetArg{Typed: flag == "--set", KeyValue: kv})
			}
		default:
			err = fmt.Errorf("unknown install flag %q", flag)
		}
		if err != nil {
			return JobArgs{}, err
		}
	}
	return a, nil
}

// JobPaths are where the job's pod has its files (package helmjob mounts them there).
type JobPaths struct {
	// Config holds the values files (*.yaml, applied in name order) and ca-file.pem.
	Config string
	// Chart holds an inline chart, <NAME>.tgz.base64.
	Chart string
	// Auth holds authSecret's username and password, or tls.crt and tls.key.
	Auth string
	// CAFiles holds repoCAConfigMap's certificates.
	CAFiles string
	// DockerConfig is dockerRegistrySecret's .dockerconfigjson.
	DockerConfig string
	// ServiceAccountCA is the cluster's CA, trusted for %{KUBERNETES_API}% charts.
	ServiceAccountCA string
}

// DefaultJobPaths are klipper-helm's paths, with Docker's config under home.
func DefaultJobPaths(home string) JobPaths {
	return JobPaths{Config: "/config", Chart: "/chart", Auth: "/auth", CAFiles: "/ca-files",
		DockerConfig:     filepath.Join(home, ".docker", "config.json"),
		ServiceAccountCA: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}
}

// JobResult says what a job did.
type JobResult struct {
	// Action is none, install, upgrade, reinstall, abort, uninstall or skip (another
	// writer changed the release since the job was written).
	Action string
	// Namespace and Release name the release.
	Namespace, Release string
	// Unsupported are the values keys k3snet's Traefik chart ignores, for an install or
	// upgrade of it; they are also said in an UnsupportedValues Warning on the HelmChart.
	Unsupported []string
}

// RunJob does what K3s's helm job does for one chart, with cfg reaching the API server:
// install or upgrade the release from the chart and the values files, following the
// release's state and the failure policy, or uninstall it. A release already deployed with
// the job's configHash is left alone, and so is one whose revision is no longer the one the
// controller saw (an uninstall goes ahead regardless). The failure policy abort is an error,
// so the job fails and retries.
func RunJob(ctx context.Context, cfg *rest.Config, env JobEnv, args JobArgs, paths JobPaths) (JobResult, error) {
	if env.HelmVersion == "v2" {
		return JobResult{}, ErrHelmV2
	}
	hc, err := jobHelmChart(env, args, paths)
	if err != nil {
		return JobResult{}, err
	}
	getter, err := newRESTGetter(cfg)
	if err != nil {
		return JobResult{}, err
	}
	rel, err := newHelmRelease(ctx, getter, hc)
	if err != nil {
		return JobResult{}, err
	}
	res := JobResult{Namespace: rel.ns, Release: rel.name}
	last, err := rel.last()
	if err != nil {
		return res, err
	}
	if args.Delete {
		// Whatever the release became since, the chart is gone: uninstall it.
		res.Action = "uninstall"
		return res, rel.uninstall()
	}
	if env.HasExpectedRevision && revision(last) != env.ExpectedRevision {
		res.Action = "skip"
		klog.FromContext(ctx).Info("The release changed since the job was written; leaving it to the next job",
			"namespace", rel.ns, "release", rel.name, "revision", revision(last), "expected", env.ExpectedRevision)
		return res, nil
	}
	src, err := chartSourceFor(hc.Spec, "")
	if err != nil {
		return res, err
	}
	ch, err := loadJobChart(hc, src, env, paths)
	if err != nil {
		return res, redactError(err)
	}
	docs, err := jobValuesFiles(paths.Config)
	if err != nil {
		return res, err
	}
	vals, err := mergeDocs(docs, args.Set)
	if err != nil {
		return res, err
	}
	hash := jobReleaseLabel(env.ConfigHash)
	act := decideRelease(last, hash, env.FailurePolicy)
	res.Action = act.String()
	switch act {
	case actionNone:
		return res, nil
	case actionAbort:
		return res, fmt.Errorf("release %s/%s is %s and the failure policy is abort: waiting for an operator", rel.ns, rel.name, last.Info.Status)
	}
	if isEmbeddedTraefik(src, ch) {
		// Said before the operation, so it is seen even when the operation then fails.
		if res.Unsupported = UnsupportedTraefikValues(vals); len(res.Unsupported) > 0 && env.ChartNamespace != "" {
			msg := unsupportedValuesMessage(res.Unsupported)
			if err := recordJobEvent(ctx, cfg, env.ChartNamespace, env.Name, ReasonUnsupportedValues, msg); err != nil {
				klog.FromContext(ctx).Error(err, "Recording the UnsupportedValues Event", "message", msg)
			}
		}
	}
	return res, redactError(rel.apply(ctx, act, last, hc, ch, vals, hash))
}

// jobHelmChart is the HelmChart the job's environment and arguments describe.
func jobHelmChart(env JobEnv, args JobArgs, paths JobPaths) (*helmchart.HelmChart, error) {
	hc := &helmchart.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: env.Name, Namespace: env.ChartNamespace}}
	hc.Spec = helmchart.HelmChartSpec{
		TargetNamespace: env.TargetNamespace, CreateNamespace: args.CreateNamespace, TakeOwnership: args.TakeOwnership,
		Chart: env.Chart, Version: env.Version, Repo: env.Repo, Driver: env.HelmDriver,
		AuthPassCredentials: env.AuthPassCredentials, InsecureSkipTLSVerify: env.InsecureSkipTLSVerify, PlainHTTP: env.PlainHTTP,
	}
	if args.Namespace != "" {
		hc.Spec.TargetNamespace = args.Namespace
	}
	if args.Version != "" {
		hc.Spec.Version = args.Version
	}
	if env.Timeout > 0 {
		hc.Spec.Timeout = &metav1.Duration{Duration: env.Timeout}
	}
	if env.Repo != "" {
		// The controller names a repository's chart <NAME>/<chart>: klipper-helm adds the
		// repository under the HelmChart's name.
		hc.Spec.Chart = strings.TrimPrefix(env.Chart, env.Name+"/")
	}
	if strings.Contains(hc.Spec.Chart, kubernetesAPIVar) {
		if env.APIServer == "" {
			return nil, fmt.Errorf("chart %q names the API server, and KUBERNETES_SERVICE_HOST is not set", env.Chart)
		}
		hc.Spec.Chart = strings.ReplaceAll(hc.Spec.Chart, kubernetesAPIVar, env.APIServer)
	}
	if !args.Delete {
		content, err := os.ReadFile(filepath.Join(paths.Chart, env.Name+".tgz.base64"))
		switch {
		case err == nil:
			hc.Spec.ChartContent = strings.TrimSpace(string(content))
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("reading the inline chart: %w", err)
		}
	}
	return hc, nil
}

// loadJobChart loads an inline chart or downloads the chart with the job's credentials.
func loadJobChart(hc *helmchart.HelmChart, src chartSource, env JobEnv, paths JobPaths) (*chart.Chart, error) {
	if src.kind == sourceInline {
		return loadChart(hc.Spec.ChartContent)
	}
	a, err := jobFetchAuth(hc, src, env, paths)
	if err != nil {
		return nil, err
	}
	timeout := env.Timeout
	if timeout == 0 {
		timeout = defaultDownloadTimeout
	}
	ch, _, err := newChartFetcher(timeout, "").fetch(src, a)
	return ch, err
}

// jobFetchAuth reads the job's credentials and CAs from its files: repoCA (ca-file.pem) and
// repoCAConfigMap's certificates, replacing the system roots as K3s's --ca-file does, the
// cluster's CA for a chart the API server serves, authSecret's files, and for OCI the
// Docker config when authSecret gives no password.
func jobFetchAuth(hc *helmchart.HelmChart, src chartSource, env JobEnv, paths JobPaths) (fetchAuth, error) {
	a := fetchAuth{passCredentials: hc.Spec.AuthPassCredentials, insecureSkipTLSVerify: hc.Spec.InsecureSkipTLSVerify, plainHTTP: hc.Spec.PlainHTTP}
	cas := map[string]string{}
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}
	if ca, err := read(filepath.Join(paths.Config, "ca-file.pem")); err != nil {
		return a, err
	} else if len(ca) > 0 {
		cas["0-repoCA"] = string(ca)
	}
	if entries, err := os.ReadDir(paths.CAFiles); err == nil {
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") { // ConfigMap volumes keep their data under ..data
				continue
			}
			data, err := os.ReadFile(filepath.Join(paths.CAFiles, e.Name()))
			if err != nil {
				return a, err
			}
			cas["1-"+e.Name()] = string(data)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return a, err
	}
	if strings.Contains(env.Chart, kubernetesAPIVar) {
		ca, err := read(paths.ServiceAccountCA)
		if err != nil {
			return a, err
		}
		cas["2-cluster"] = string(ca)
	}
	if len(cas) > 0 {
		a.caPEM = appendCABundle(nil, cas)
	}
	auth := map[string][]byte{}
	for _, key := range []string{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey, corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		data, err := read(filepath.Join(paths.Auth, key))
		if err != nil {
			return a, err
		}
		auth[key] = data
	}
	a.setAuthSecret(auth)
	if src.kind == sourceOCI && a.password == "" {
		config, err := read(paths.DockerConfig)
		if err != nil || config == nil {
			return a, err
		}
		if a.username, a.password, err = registryCredentialsFor(config, src); err != nil {
			return a, fmt.Errorf("docker config: %w", err)
		}
	}
	return a, nil
}

// jobValuesFiles reads the values files of dir, *.yaml in name order, the order that is
// K3s's precedence.
func jobValuesFiles(dir string) ([]valuesDoc, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	docs := make([]valuesDoc, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading values: %w", err)
		}
		docs = append(docs, valuesDoc{name: filepath.Base(name), text: string(data)})
	}
	return docs, nil
}

// jobReleaseLabel is the configHash label value of a job's hash: its hex digits, cut to the
// 63 characters a label value may have.
func jobReleaseLabel(configHash string) string {
	hash := strings.ToLower(strings.TrimPrefix(configHash, "SHA256="))
	if len(hash) > 63 {
		hash = hash[:63]
	}
	return hash
}
