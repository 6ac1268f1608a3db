package helmjob

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/k3snet/k3snet/internal/systemimage"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

const (
	// DefaultJobImage is the image of K3s's helm jobs (its --helm-job-image default). The
	// air-gap tarball k3snet builds carries k3snet's own image of that name, which keeps
	// klipper-helm's contract: the environment, arguments and files this package writes.
	DefaultJobImage = "rancher/klipper-helm:v0.9.14-build20260309"
	// DefaultClusterRole is the ClusterRole K3s binds each chart's service account to.
	DefaultClusterRole = "cluster-admin"
	// defaultBackOffLimit is K3s's: a job retries for as long as it takes.
	defaultBackOffLimit = 1000
	// containerName is the job container's name, K3s's.
	containerName = "helm"
	// home is klipper-helm's home directory; Helm's state goes to memory under it.
	home = "/home/klipper-helm"
	// hashPrefix starts the configHash annotation's value, as in K3s.
	hashPrefix = "SHA256="
)

// JobOptions shape the jobs of every chart.
type JobOptions struct {
	// Image runs a chart's jobs when the chart sets no spec.jobImage. Default
	// DefaultJobImage; K3s's --system-default-registry prefix is the caller's to add.
	Image string
	// ClusterRole is what each chart's service account is bound to. Default cluster-admin.
	ClusterRole string
	// APIServerPort is where a bootstrap chart's job finds the API server on 127.0.0.1: it
	// runs in the host's network, before the cluster's network exists. Required for
	// bootstrap charts.
	APIServerPort int
	// ProxyEnv is copied into every job (ProxyEnv picks them from an environment).
	ProxyEnv []corev1.EnvVar
}

// Inputs are what one chart's objects are built from.
type Inputs struct {
	// Chart is the HelmChart. Required.
	Chart *helmchart.HelmChart
	// Config is the HelmChartConfig of the same namespace and name; nil when there is none.
	Config *helmchart.HelmChartConfig
	// ValuesSecrets holds the data of the values Secrets the chart and its config read, by
	// name. Only the hash reads it: a change to one replaces the job. References marked
	// ignoreUpdates are left out of the hash, so their changes do not redeploy (K3s).
	ValuesSecrets map[string]map[string][]byte
	// ExpectedRevision is the revision of the chart's newest release, 0 when there is none.
	// The job does nothing when it finds another: someone else changed the release since.
	ExpectedRevision int
	// Deleting builds the uninstall job (the HelmChart is being deleted).
	Deleting bool
}

// Objects are what the controller writes for one chart, in the order it writes them.
type Objects struct {
	ServiceAccount     *corev1.ServiceAccount
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	ValuesSecret       *corev1.Secret
	// ContentConfigMap holds spec.chartContent; nil for a chart that is downloaded.
	ContentConfigMap *corev1.ConfigMap
	Job              *batchv1.Job
	// ConfigHash is the job's configHash annotation: when it differs from the running
	// job's, the job is replaced.
	ConfigHash string
}

// Build returns a chart's objects. Its errors are the chart's own (a values document
// that cannot be encoded, too many values files, a bootstrap chart without an API server
// port): the controller reports them on the HelmChart.
func Build(in Inputs, opts JobOptions) (*Objects, error) {
	hc := in.Chart
	if opts.Image == "" {
		opts.Image = DefaultJobImage
	}
	if opts.ClusterRole == "" {
		opts.ClusterRole = DefaultClusterRole
	}
	if hc.Spec.Bootstrap && opts.APIServerPort == 0 {
		return nil, fmt.Errorf("HelmChart %s/%s is a bootstrap chart, and no API server port is set for its job", hc.Namespace, hc.Name)
	}
	data, err := ValuesData(hc, in.Config)
	if err != nil {
		return nil, err
	}
	projection, err := valuesProjection(hc, in.Config, data)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{helmchart.LabelChart: hc.Name}
	out := &Objects{
		ServiceAccount: &corev1.ServiceAccount{
			ObjectMeta:                   metav1.ObjectMeta{Name: ServiceAccountName(hc.Name), Namespace: hc.Namespace, Labels: labels},
			AutomountServiceAccountToken: ptr.To(true),
		},
		ClusterRoleBinding: &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleBindingName(hc.Namespace, hc.Name), Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: opts.ClusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ServiceAccountName(hc.Name), Namespace: hc.Namespace}},
		},
		ValuesSecret: &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: ValuesSecretName(hc.Name), Namespace: hc.Namespace, Labels: labels},
			Type:       ValuesSecretType,
			Data:       data,
		},
	}
	if hc.Spec.ChartContent != "" {
		out.ContentConfigMap = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ContentConfigMapName(hc.Name), Namespace: hc.Namespace, Labels: labels},
			Data:       map[string]string{ContentKey(hc.Name): hc.Spec.ChartContent},
		}
	}

	backOff := int32(defaultBackOffLimit)
	if hc.Spec.BackOffLimit != nil {
		backOff = *hc.Spec.BackOffLimit
	}
	template := podTemplate(in, opts, projection, labels)
	hashed := [][]byte{}
	for _, d := range []map[string][]byte{data, contentData(out.ContentConfigMap)} {
		hashed = append(hashed, flatten(d))
	}
	for _, name := range hashedSecrets(in) {
		hashed = append(hashed, []byte(name), flatten(in.ValuesSecrets[name]))
	}
	out.ConfigHash, err = configHash(backOff, template, hashed)
	if err != nil {
		return nil, err
	}
	template.Annotations = map[string]string{helmchart.LabelConfigHash: out.ConfigHash}
	c := &template.Spec.Containers[0]
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "EXPECTED_RELEASE_REVISION", Value: strconv.Itoa(in.ExpectedRevision)},
		corev1.EnvVar{Name: "CONFIG_HASH", Value: out.ConfigHash})

	name := InstallJobName(hc.Name)
	if in.Deleting {
		name = DeleteJobName(hc.Name)
	}
	out.Job = &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hc.Namespace, Labels: labels,
			Annotations: map[string]string{helmchart.LabelConfigHash: out.ConfigHash}},
		Spec: batchv1.JobSpec{BackoffLimit: &backOff, Template: template},
	}
	return out, nil
}

// podTemplate is the job's pod before its hash: what klipper-helm needs to run the chart.
func podTemplate(in Inputs, opts JobOptions, projection []corev1.VolumeProjection, labels map[string]string) corev1.PodTemplateSpec {
	hc := in.Chart
	image := opts.Image
	if hc.Spec.JobImage != "" {
		image = hc.Spec.JobImage
	}
	args := []string{"delete"}
	if !in.Deleting {
		args = installArgs(hc)
	}
	spec := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyOnFailure,
		ServiceAccountName: ServiceAccountName(hc.Name),
		PriorityClassName:  "system-cluster-critical",
		NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            containerName,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            args,
			Env:             append(jobEnv(hc, in.Config), opts.ProxyEnv...),
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				ReadOnlyRootFilesystem:   ptr.To(true),
			},
		}},
	}
	if hc.Spec.PodSecurityContext != nil {
		spec.SecurityContext = hc.Spec.PodSecurityContext.DeepCopy()
	}
	if hc.Spec.SecurityContext != nil {
		spec.Containers[0].SecurityContext = hc.Spec.SecurityContext.DeepCopy()
	}
	addVolumes(&spec, hc, projection)
	if hc.Spec.Bootstrap {
		bootstrap(&spec, opts.APIServerPort)
	}
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
}

// jobEnv is klipper-helm's environment: what to install, from where, and how.
func jobEnv(hc *helmchart.HelmChart, cfg *helmchart.HelmChartConfig) []corev1.EnvVar {
	chart := hc.Spec.Chart
	if hc.Spec.Repo != "" {
		// klipper-helm adds the repository under the HelmChart's name.
		chart = hc.Name + "/" + chart
	}
	driver := hc.Spec.Driver
	if driver == "" {
		driver = "secret"
	}
	policy, serverSide, forceConflicts := hc.Spec.FailurePolicy, hc.Spec.ServerSide, hc.Spec.ForceConflicts
	if cfg != nil {
		if cfg.Spec.FailurePolicy != "" {
			policy = cfg.Spec.FailurePolicy
		}
		if cfg.Spec.ServerSide != "" {
			serverSide = cfg.Spec.ServerSide
		}
		if cfg.Spec.ForceConflicts != nil {
			forceConflicts = cfg.Spec.ForceConflicts
		}
	}
	if policy == "" {
		policy = helmchart.FailurePolicyReinstall
	}
	if serverSide == "" {
		serverSide = "auto"
	}
	env := []corev1.EnvVar{
		{Name: "NAME", Value: hc.Name},
		{Name: "VERSION", Value: hc.Spec.Version},
		{Name: "REPO", Value: hc.Spec.Repo},
		{Name: "HELM_DRIVER", Value: driver},
		{Name: "CHART_NAMESPACE", Value: hc.Namespace},
		{Name: "CHART", Value: chart},
		{Name: "HELM_VERSION", Value: hc.Spec.HelmVersion},
		{Name: "TARGET_NAMESPACE", Value: hc.TargetNamespace()},
		{Name: "AUTH_PASS_CREDENTIALS", Value: strconv.FormatBool(hc.Spec.AuthPassCredentials)},
		{Name: "INSECURE_SKIP_TLS_VERIFY", Value: strconv.FormatBool(hc.Spec.InsecureSkipTLSVerify)},
		{Name: "PLAIN_HTTP", Value: strconv.FormatBool(hc.Spec.PlainHTTP)},
		{Name: "FAILURE_POLICY", Value: policy},
		{Name: "SERVER_SIDE", Value: serverSide},
		{Name: "FORCE_CONFLICTS", Value: strconv.FormatBool(forceConflicts != nil && *forceConflicts)},
	}
	if hc.Spec.Timeout != nil {
		env = append(env, corev1.EnvVar{Name: "TIMEOUT", Value: hc.Spec.Timeout.Duration.String()})
	}
	return env
}

// installArgs are klipper-helm's install arguments, then spec.set in key order.
func installArgs(hc *helmchart.HelmChart) []string {
	args := []string{"install"}
	if hc.Spec.TargetNamespace != "" {
		args = append(args, "--namespace", hc.Spec.TargetNamespace)
	}
	if hc.Spec.CreateNamespace {
		args = append(args, "--create-namespace")
	}
	if hc.Spec.TakeOwnership {
		args = append(args, "--take-ownership")
	}
	if hc.Spec.Version != "" {
		args = append(args, "--version", hc.Spec.Version)
	}
	keys := make([]string, 0, len(hc.Spec.Set))
	for k := range hc.Spec.Set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		arg := helmchart.SetArgFor(k, hc.Spec.Set[k])
		args = append(args, arg.Flag(), arg.KeyValue)
	}
	return args
}

// addVolumes mounts what klipper-helm reads: the values files at /config, an inline chart at
// /chart, the authSecret at /auth, the dockerRegistrySecret as Docker's config, the
// repoCAConfigMap's certificates at /ca-files, and memory for Helm's state and /tmp under
// the read-only root.
func addVolumes(spec *corev1.PodSpec, hc *helmchart.HelmChart, projection []corev1.VolumeProjection) {
	c := &spec.Containers[0]
	add := func(name, path string, src corev1.VolumeSource) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: src})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: path})
	}
	for _, d := range []struct{ name, path string }{
		{"klipper-helm", home + "/.helm"}, {"klipper-cache", home + "/.cache"},
		{"klipper-config", home + "/.config"}, {"tmp", "/tmp"},
	} {
		add(d.name, d.path, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}})
	}
	add("values", "/config", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: projection}})
	if hc.Spec.ChartContent != "" {
		add("content", "/chart", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ContentConfigMapName(hc.Name)}}})
	}
	if ref := hc.Spec.AuthSecret; ref != nil && ref.Name != "" {
		add("auth", "/auth", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: ref.Name}})
	}
	if ref := hc.Spec.DockerRegistrySecret; ref != nil && ref.Name != "" {
		add("docker", home+"/.docker", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: ref.Name,
			Items: []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}}}})
	}
	if ref := hc.Spec.RepoCAConfigMap; ref != nil && ref.Name != "" {
		add("ca-files", "/ca-files", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: *ref}})
	}
}

// bootstrap lets a bootstrap chart's job run before the cluster has a network or a ready
// node: on a server, in the host's network, reaching the API server on the loopback.
func bootstrap(spec *corev1.PodSpec, apiServerPort int) {
	spec.HostNetwork = true
	spec.NodeSelector["node-role.kubernetes.io/control-plane"] = "true"
	spec.Tolerations = []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/network-unavailable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.cloudprovider.kubernetes.io/uninitialized", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
		{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
		{Key: "node-role.kubernetes.io/etcd", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
	c := &spec.Containers[0]
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"},
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: strconv.Itoa(apiServerPort)},
		corev1.EnvVar{Name: "BOOTSTRAP", Value: "true"})
}

// JobImage is the image of the jobs of charts that set no spec.jobImage, as a K3s server
// picks it: --helm-job-image as given, else DefaultJobImage from --system-default-registry
// when that is set.
func JobImage(helmJobImage, systemDefaultRegistry string) string {
	if helmJobImage != "" {
		return helmJobImage
	}
	return systemimage.Name(systemDefaultRegistry, DefaultJobImage)
}

// ProxyEnv picks the proxy variables out of an environment (os.Environ's form), both
// cases, as K3s copies its own into every helm job.
func ProxyEnv(environ []string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			env = append(env, corev1.EnvVar{Name: k, Value: v})
		}
	}
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env
}

// hashedSecrets are the names of the values Secrets whose data is in the hash, sorted: the
// used references of chart and config without ignoreUpdates.
func hashedSecrets(in Inputs) []string {
	refs := slices.Clone(in.Chart.Spec.ValuesSecrets)
	if in.Config != nil {
		refs = append(refs, in.Config.Spec.ValuesSecrets...)
	}
	var names []string
	for _, ref := range refs {
		if helmchart.UsedValuesSecret(in.Chart.Name, ref) && !ref.IgnoreUpdates {
			names = append(names, ref.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func contentData(cm *corev1.ConfigMap) map[string][]byte {
	if cm == nil {
		return nil
	}
	data := make(map[string][]byte, len(cm.Data))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	return data
}

// flatten writes data's keys in order, each key and value length-prefixed, so no two maps
// give the same bytes.
func flatten(data map[string][]byte) []byte {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(data[k])))
		b = append(b, data[k]...)
	}
	return b
}

// configHash is K3s's job hash: SHA-256 over the back-off limit, the pod template and the
// data the pod reads, as "SHA256=<HEX>".
func configHash(backOff int32, template corev1.PodTemplateSpec, data [][]byte) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", backOff)
	pod, err := json.Marshal(template)
	if err != nil {
		return "", fmt.Errorf("encoding the job's pod template: %w", err)
	}
	h.Write(binary.AppendUvarint(nil, uint64(len(pod))))
	h.Write(pod)
	for _, d := range data {
		h.Write(binary.AppendUvarint(nil, uint64(len(d))))
		h.Write(d)
	}
	return hashPrefix + strings.ToUpper(hex.EncodeToString(h.Sum(nil))), nil
}
