package helmjob

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/k3snet/k3snet/internal/gobuild"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

func traefikChart(tweaks ...func(*helmchart.HelmChart)) *helmchart.HelmChart {
	hc := &helmchart.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: "kube-system"}}
	hc.Spec.Chart = "https://%{KUBERNETES_API}%/static/charts/traefik.tgz"
	for _, f := range tweaks {
		f(hc)
	}
	return hc
}

func build(t *testing.T, in Inputs) *Objects {
	t.Helper()
	out, err := Build(in, JobOptions{APIServerPort: 6443})
	require.NoError(t, err)
	return out
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func TestNamesAreK3ss(t *testing.T) {
	out := build(t, Inputs{Chart: traefikChart(func(hc *helmchart.HelmChart) { hc.Spec.ChartContent = "dGd6" })})
	assert.Equal(t, "helm-install-traefik", out.Job.Name)
	assert.Equal(t, "kube-system", out.Job.Namespace)
	assert.Equal(t, "helm-traefik", out.ServiceAccount.Name)
	assert.Equal(t, "helm-kube-system-traefik", out.ClusterRoleBinding.Name)
	assert.Equal(t, "chart-values-traefik", out.ValuesSecret.Name)
	assert.Equal(t, ValuesSecretType, out.ValuesSecret.Type)
	assert.Equal(t, "chart-content-traefik", out.ContentConfigMap.Name)
	assert.Equal(t, map[string]string{"traefik.tgz.base64": "dGd6"}, out.ContentConfigMap.Data)
	for _, labels := range []map[string]string{out.Job.Labels, out.Job.Spec.Template.Labels, out.ServiceAccount.Labels, out.ValuesSecret.Labels} {
		assert.Equal(t, "traefik", labels[helmchart.LabelChart])
	}
	del := build(t, Inputs{Chart: traefikChart(), Deleting: true})
	assert.Equal(t, "helm-delete-traefik", del.Job.Name)
	assert.Equal(t, []string{"delete"}, del.Job.Spec.Template.Spec.Containers[0].Args)
	assert.Nil(t, del.ContentConfigMap, "a downloaded chart has no content ConfigMap")
}

func TestInstallJobPod(t *testing.T) {
	out := build(t, Inputs{Chart: traefikChart(), ExpectedRevision: 3})
	job := out.Job
	require.EqualValues(t, 1000, *job.Spec.BackoffLimit, "K3s's default back-off limit")
	pod := job.Spec.Template.Spec
	assert.Equal(t, corev1.RestartPolicyOnFailure, pod.RestartPolicy)
	assert.Equal(t, "helm-traefik", pod.ServiceAccountName)
	assert.Equal(t, "system-cluster-critical", pod.PriorityClassName)
	assert.Equal(t, map[string]string{"kubernetes.io/os": "linux"}, pod.NodeSelector)
	assert.False(t, pod.HostNetwork)
	assert.Empty(t, pod.Tolerations)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, "helm", c.Name)
	assert.Equal(t, DefaultJobImage, c.Image)
	assert.Equal(t, []string{"install"}, c.Args)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Equal(t, map[string]string{
		"NAME": "traefik", "VERSION": "", "REPO": "", "HELM_DRIVER": "secret", "CHART_NAMESPACE": "kube-system",
		"CHART": "https://%{KUBERNETES_API}%/static/charts/traefik.tgz", "HELM_VERSION": "", "TARGET_NAMESPACE": "kube-system",
		"AUTH_PASS_CREDENTIALS": "false", "INSECURE_SKIP_TLS_VERIFY": "false", "PLAIN_HTTP": "false",
		"FAILURE_POLICY": "reinstall", "SERVER_SIDE": "auto", "FORCE_CONFLICTS": "false",
		"EXPECTED_RELEASE_REVISION": "3", "CONFIG_HASH": out.ConfigHash,
	}, envOf(c))
	assert.Regexp(t, `^SHA256=[0-9A-F]{64}$`, out.ConfigHash)
	assert.Equal(t, out.ConfigHash, job.Spec.Template.Annotations[helmchart.LabelConfigHash])
	assert.Equal(t, out.ConfigHash, job.Annotations[helmchart.LabelConfigHash])

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	assert.Equal(t, map[string]string{"/home/klipper-helm/.helm": "klipper-helm", "/home/klipper-helm/.cache": "klipper-cache",
		"/home/klipper-helm/.config": "klipper-config", "/tmp": "tmp", "/config": "values"}, mounts)
	require.Len(t, pod.Volumes, len(mounts), "each volume is mounted")
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			assert.Equal(t, corev1.StorageMediumMemory, v.EmptyDir.Medium, v.Name)
		}
	}
}

func TestInstallArgs(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*helmchart.HelmChart)
		want  []string
	}{
		{"nothing set", func(*helmchart.HelmChart) {}, []string{"install"}},
		{"a target namespace, created", func(hc *helmchart.HelmChart) {
			hc.Spec.TargetNamespace, hc.Spec.CreateNamespace = "web", true
		}, []string{"install", "--namespace", "web", "--create-namespace"}},
		{"take ownership and a version", func(hc *helmchart.HelmChart) {
			hc.Spec.TakeOwnership, hc.Spec.Version = true, "1.2.3"
		}, []string{"install", "--take-ownership", "--version", "1.2.3"}},
		{"set, in key order, typed or as strings", func(hc *helmchart.HelmChart) {
			hc.Spec.Set = map[string]intstr.IntOrString{"z": intstr.FromString("a,b"), "a": intstr.FromInt32(2), "m": intstr.FromString("True")}
		}, []string{"install", "--set", "a=2", "--set", "m=true", "--set-string", `z=a\,b`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := build(t, Inputs{Chart: traefikChart(tt.tweak)})
			require.Equal(t, tt.want, out.Job.Spec.Template.Spec.Containers[0].Args)
		})
	}
}

func TestJobEnv(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*helmchart.HelmChart)
		cfg   *helmchart.HelmChartConfig
		want  map[string]string
	}{
		{"a repository chart is named after the HelmChart's repository", func(hc *helmchart.HelmChart) {
			hc.Spec.Chart, hc.Spec.Repo, hc.Spec.Version = "traefik", "https://traefik.github.io/charts", "30.0.0"
		}, nil, map[string]string{"CHART": "traefik/traefik", "REPO": "https://traefik.github.io/charts", "VERSION": "30.0.0"}},
		{"the chart's own settings", func(hc *helmchart.HelmChart) {
			hc.Spec.FailurePolicy, hc.Spec.ServerSide, hc.Spec.ForceConflicts = "abort", "true", ptr.To(true)
			hc.Spec.Driver, hc.Spec.Timeout = "configmap", &metav1.Duration{Duration: 90 * time.Second}
			hc.Spec.AuthPassCredentials, hc.Spec.InsecureSkipTLSVerify, hc.Spec.PlainHTTP = true, true, true
			hc.Spec.TargetNamespace = "web"
		}, nil, map[string]string{"FAILURE_POLICY": "abort", "SERVER_SIDE": "true", "FORCE_CONFLICTS": "true",
			"HELM_DRIVER": "configmap", "TIMEOUT": "1m30s", "AUTH_PASS_CREDENTIALS": "true",
			"INSECURE_SKIP_TLS_VERIFY": "true", "PLAIN_HTTP": "true", "TARGET_NAMESPACE": "web", "CHART_NAMESPACE": "kube-system"}},
		{"the config's settings win", func(hc *helmchart.HelmChart) {
			hc.Spec.FailurePolicy, hc.Spec.ServerSide, hc.Spec.ForceConflicts = "abort", "true", ptr.To(true)
		}, &helmchart.HelmChartConfig{Spec: helmchart.HelmChartConfigSpec{FailurePolicy: "retry", ServerSide: "false", ForceConflicts: ptr.To(false)}},
			map[string]string{"FAILURE_POLICY": "retry", "SERVER_SIDE": "false", "FORCE_CONFLICTS": "false"}},
		{"an empty config changes nothing", func(hc *helmchart.HelmChart) { hc.Spec.FailurePolicy = "abort" },
			&helmchart.HelmChartConfig{}, map[string]string{"FAILURE_POLICY": "abort", "SERVER_SIDE": "auto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := build(t, Inputs{Chart: traefikChart(tt.tweak), Config: tt.cfg})
			env := envOf(out.Job.Spec.Template.Spec.Containers[0])
			for k, v := range tt.want {
				assert.Equal(t, v, env[k], k)
			}
			if _, ok := tt.want["TIMEOUT"]; !ok {
				assert.NotContains(t, env, "TIMEOUT", "no timeout: Helm's default")
			}
		})
	}
}

func TestValuesSecretAndFiles(t *testing.T) {
	hc := traefikChart(func(hc *helmchart.HelmChart) {
		hc.Spec.ValuesContent = "a: 1\n"
		hc.Spec.Values = map[string]any{"b": map[string]any{"z": 1, "c": "x"}}
		hc.Spec.RepoCA = "PEM"
		hc.Spec.ValuesSecrets = []helmchart.ValuesSecret{
			{Name: "one", Keys: []string{"k1", "k2"}},
			{Name: "chart-values-traefik", Keys: []string{"x"}}, // K3s's own: ignored
			{Name: "nokeys"}, // no keys: ignored
			{Name: "two", Keys: []string{"k"}, IgnoreUpdates: true},
		}
	})
	cfg := &helmchart.HelmChartConfig{Spec: helmchart.HelmChartConfigSpec{
		ValuesContent: "c: 3\n",
		ValuesSecrets: []helmchart.ValuesSecret{{Name: "three", Keys: []string{"k"}}},
	}}
	out := build(t, Inputs{Chart: hc, Config: cfg})
	assert.Equal(t, map[string][]byte{
		"HelmChartValuesContent":       []byte("a: 1\n"),
		"HelmChartValues":              []byte("b:\n  c: x\n  z: 1\n"),
		"RepoCA":                       []byte("PEM"),
		"HelmChartConfigValuesContent": []byte("c: 3\n"),
	}, out.ValuesSecret.Data, "only the non-empty keys, structured values as YAML with sorted keys")

	var files []string
	optional := map[string]bool{}
	for _, v := range out.Job.Spec.Template.Spec.Volumes {
		if v.Name != "values" {
			continue
		}
		for _, src := range v.Projected.Sources {
			for _, item := range src.Secret.Items {
				files = append(files, src.Secret.Name+":"+item.Key+">"+item.Path)
			}
			optional[src.Secret.Name] = src.Secret.Optional != nil && *src.Secret.Optional
		}
	}
	assert.Equal(t, []string{
		"chart-values-traefik:HelmChartValuesContent>values-0-000-HelmChart-ValuesContent.yaml",
		"chart-values-traefik:HelmChartValues>values-0-001-HelmChart-Values.yaml",
		"chart-values-traefik:HelmChartConfigValuesContent>values-1-000-HelmChartConfig-ValuesContent.yaml",
		"chart-values-traefik:RepoCA>ca-file.pem",
		"one:k1>values-0-002-HelmChart-ValuesSecret.yaml",
		"one:k2>values-0-003-HelmChart-ValuesSecret.yaml",
		"two:k>values-0-004-HelmChart-ValuesSecret.yaml",
		"three:k>values-1-002-HelmChartConfig-ValuesSecret.yaml",
	}, files)
	assert.Equal(t, map[string]bool{"chart-values-traefik": false, "one": false, "two": true, "three": false}, optional,
		"a values Secret marked ignoreUpdates is optional")
}

func TestTooManyValuesFilesIsTheChartsError(t *testing.T) {
	keys := make([]string, 999)
	for i := range keys {
		keys[i] = "k" + strings.Repeat("x", i%3)
	}
	hc := traefikChart(func(hc *helmchart.HelmChart) {
		hc.Spec.ValuesSecrets = []helmchart.ValuesSecret{{Name: "big", Keys: keys}}
	})
	_, err := Build(Inputs{Chart: hc}, JobOptions{})
	require.ErrorContains(t, err, "more than 998 keys")
	hc.Spec.ValuesSecrets[0].Keys = keys[:998]
	_, err = Build(Inputs{Chart: hc}, JobOptions{})
	require.NoError(t, err, "998 keys are numbered 002 to 999")
}

func TestChartVolumes(t *testing.T) {
	out := build(t, Inputs{Chart: traefikChart(func(hc *helmchart.HelmChart) {
		hc.Spec.ChartContent = "dGd6"
		hc.Spec.AuthSecret = &corev1.LocalObjectReference{Name: "auth"}
		hc.Spec.DockerRegistrySecret = &corev1.LocalObjectReference{Name: "regcred"}
		hc.Spec.RepoCAConfigMap = &corev1.LocalObjectReference{Name: "cas"}
	})})
	pod := out.Job.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	assert.Equal(t, "chart-content-traefik", volumes["content"].ConfigMap.Name)
	assert.Equal(t, "/chart", mounts["content"])
	assert.Equal(t, "auth", volumes["auth"].Secret.SecretName)
	assert.Equal(t, "/auth", mounts["auth"])
	assert.Equal(t, "regcred", volumes["docker"].Secret.SecretName)
	assert.Equal(t, []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}, volumes["docker"].Secret.Items)
	assert.Equal(t, "/home/klipper-helm/.docker", mounts["docker"])
	assert.Equal(t, "cas", volumes["ca-files"].ConfigMap.Name)
	assert.Equal(t, "/ca-files", mounts["ca-files"])
}

func TestBootstrapChartRunsOnAServerInTheHostNetwork(t *testing.T) {
	hc := traefikChart(func(hc *helmchart.HelmChart) { hc.Spec.Bootstrap = true })
	out := build(t, Inputs{Chart: hc})
	pod := out.Job.Spec.Template.Spec
	assert.True(t, pod.HostNetwork)
	assert.Equal(t, "true", pod.NodeSelector["node-role.kubernetes.io/control-plane"])
	tolerated := map[string]bool{}
	for _, tol := range pod.Tolerations {
		tolerated[tol.Key] = true
	}
	for _, taint := range []string{"node.kubernetes.io/not-ready", "node.kubernetes.io/network-unavailable",
		"node.cloudprovider.kubernetes.io/uninitialized", "CriticalAddonsOnly", "node-role.kubernetes.io/control-plane"} {
		assert.True(t, tolerated[taint], taint)
	}
	env := envOf(pod.Containers[0])
	assert.Equal(t, "127.0.0.1", env["KUBERNETES_SERVICE_HOST"])
	assert.Equal(t, "6443", env["KUBERNETES_SERVICE_PORT"])
	assert.Equal(t, "true", env["BOOTSTRAP"])

	_, err := Build(Inputs{Chart: hc}, JobOptions{})
	require.ErrorContains(t, err, "no API server port")
}

func TestSecurityContextsAndImageFromTheChart(t *testing.T) {
	out := build(t, Inputs{Chart: traefikChart(func(hc *helmchart.HelmChart) {
		hc.Spec.JobImage = "registry.local/helm:1"
		hc.Spec.PodSecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}
		hc.Spec.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		hc.Spec.BackOffLimit = ptr.To[int32](4)
	})})
	pod := out.Job.Spec.Template.Spec
	assert.Equal(t, &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}, pod.SecurityContext, "the chart's replaces the default")
	assert.Equal(t, &corev1.SecurityContext{Privileged: ptr.To(true)}, pod.Containers[0].SecurityContext)
	assert.Equal(t, "registry.local/helm:1", pod.Containers[0].Image)
	assert.EqualValues(t, 4, *out.Job.Spec.BackoffLimit)

	other, err := Build(Inputs{Chart: traefikChart()}, JobOptions{Image: "mirror.local/rancher/klipper-helm:x", ClusterRole: "helm-jobs"})
	require.NoError(t, err)
	assert.Equal(t, "mirror.local/rancher/klipper-helm:x", other.Job.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "helm-jobs", other.ClusterRoleBinding.RoleRef.Name)
	assert.Equal(t, "helm-traefik", other.ClusterRoleBinding.Subjects[0].Name)
	assert.Equal(t, "kube-system", other.ClusterRoleBinding.Subjects[0].Namespace)
}

func TestConfigHash(t *testing.T) {
	base := func() Inputs {
		hc := traefikChart(func(hc *helmchart.HelmChart) {
			hc.Spec.ValuesContent = "a: 1\n"
			hc.Spec.ValuesSecrets = []helmchart.ValuesSecret{{Name: "watched", Keys: []string{"k"}}, {Name: "ignored", Keys: []string{"k"}, IgnoreUpdates: true}}
		})
		return Inputs{Chart: hc, ValuesSecrets: map[string]map[string][]byte{"watched": {"k": []byte("w")}, "ignored": {"k": []byte("i")}}}
	}
	hash := func(in Inputs) string { return build(t, in).ConfigHash }
	want := hash(base())
	require.Equal(t, want, hash(base()), "the same inputs give the same hash")

	same := map[string]func(*Inputs){
		"another expected revision":       func(in *Inputs) { in.ExpectedRevision = 7 },
		"an ignoreUpdates Secret changes": func(in *Inputs) { in.ValuesSecrets["ignored"] = map[string][]byte{"k": []byte("j")} },
		"an unreferenced Secret changes":  func(in *Inputs) { in.ValuesSecrets["other"] = map[string][]byte{"k": nil} },
	}
	for name, f := range same {
		in := base()
		f(&in)
		assert.Equal(t, want, hash(in), name)
	}
	differ := map[string]func(*Inputs){
		"the values change":          func(in *Inputs) { in.Chart.Spec.ValuesContent = "a: 2\n" },
		"a watched Secret changes":   func(in *Inputs) { in.ValuesSecrets["watched"] = map[string][]byte{"k": []byte("v")} },
		"the chart content changes":  func(in *Inputs) { in.Chart.Spec.ChartContent = "eA==" },
		"the back-off limit changes": func(in *Inputs) { in.Chart.Spec.BackOffLimit = ptr.To[int32](3) },
		"the image changes":          func(in *Inputs) { in.Chart.Spec.JobImage = "x" },
		"a set value changes":        func(in *Inputs) { in.Chart.Spec.Set = map[string]intstr.IntOrString{"a": intstr.FromInt32(1)} },
		"a config appears": func(in *Inputs) {
			in.Config = &helmchart.HelmChartConfig{Spec: helmchart.HelmChartConfigSpec{ValuesContent: "b: 1\n"}}
		},
	}
	for name, f := range differ {
		in := base()
		f(&in)
		assert.NotEqual(t, want, hash(in), name)
	}
}

func TestFlattenKeepsBoundaries(t *testing.T) {
	assert.NotEqual(t, flatten(map[string][]byte{"ab": []byte("c")}), flatten(map[string][]byte{"a": []byte("bc")}))
	assert.Equal(t, flatten(map[string][]byte{"a": nil, "b": []byte("x")}), flatten(map[string][]byte{"b": []byte("x"), "a": nil}))
}

func TestProxyEnv(t *testing.T) {
	got := ProxyEnv([]string{"PATH=/bin", "HTTPS_PROXY=http://p:3128", "no_proxy=.svc", "ALL_PROXY=socks5://p", "http_proxy", "HOME=/root"})
	assert.Equal(t, []corev1.EnvVar{{Name: "ALL_PROXY", Value: "socks5://p"}, {Name: "HTTPS_PROXY", Value: "http://p:3128"}, {Name: "no_proxy", Value: ".svc"}}, got)
	out, err := Build(Inputs{Chart: traefikChart()}, JobOptions{ProxyEnv: got})
	require.NoError(t, err)
	assert.Equal(t, "http://p:3128", envOf(out.Job.Spec.Template.Spec.Containers[0])["HTTPS_PROXY"])
}

func TestJobImage(t *testing.T) {
	for _, tc := range []struct{ helmJobImage, registry, want string }{
		{"", "", DefaultJobImage},
		{"", "registry.example.org", "registry.example.org/" + DefaultJobImage},
		{"", "registry.example.org/", "registry.example.org/" + DefaultJobImage},
		{"mine/helm:1", "registry.example.org", "mine/helm:1"},
	} {
		assert.Equal(t, tc.want, JobImage(tc.helmJobImage, tc.registry), "%+v", tc)
	}
}

// The point of running Helm in jobs is that the controller's process links no Helm.
func TestLinksNoHelm(t *testing.T) {
	deps, err := gobuild.Deps()
	require.NoError(t, err)
	require.Empty(t, gobuild.Within(deps, gobuild.HelmTrees()...), "helmjob links Helm")
}

func TestStatusFor(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "helm-install-x"}}
	created := helmchart.HelmChartCondition{Type: "JobCreated", Status: "True", Reason: "JobCreated", Message: "Job created"}
	assert.Equal(t, helmchart.HelmChartStatus{JobName: "helm-install-x", Conditions: []helmchart.HelmChartCondition{
		created, {Type: "Failed", Status: "False"}}}, statusFor(job))
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
	assert.Equal(t, helmchart.HelmChartCondition{Type: "Failed", Status: "True", Reason: "JobFailed", Message: "Job failed"},
		statusFor(job).Conditions[1])
}

func TestMergeConditionsKeepsOtherTypesInPlace(t *testing.T) {
	have := []helmchart.HelmChartCondition{{Type: "Failed", Status: "True"}, {Type: "Other", Status: "True"}}
	got := mergeConditions(have, helmchart.HelmChartCondition{Type: "JobCreated", Status: "True"}, helmchart.HelmChartCondition{Type: "Failed", Status: "False"})
	assert.Equal(t, []helmchart.HelmChartCondition{{Type: "Failed", Status: "False"}, {Type: "Other", Status: "True"}, {Type: "JobCreated", Status: "True"}}, got)
	assert.True(t, equalStatus(helmchart.HelmChartStatus{Conditions: got}, helmchart.HelmChartStatus{Conditions: slices.Clone(got)}))
	assert.False(t, equalStatus(helmchart.HelmChartStatus{Conditions: got}, helmchart.HelmChartStatus{Conditions: have}))
}
