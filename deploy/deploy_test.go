package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/images"
)

// The installation's names, as the uninstall code knows them.
const (
	namespace       = compose.DefaultNamespace
	controllersName = compose.ControllersAppName
	nodeName        = compose.NodeAppName
)

// kubectl returns the kubectl hack/build-tools.sh builds. Without it the test is skipped,
// naming it, or fails under CI, where the binaries are built.
func kubectl(t *testing.T) string {
	t.Helper()
	dir, err := controlplane.FindBinDir()
	if err == nil {
		p := filepath.Join(dir, "kubectl")
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("needs kubectl from hack/build-tools.sh: %v", err)
	}
	t.Skipf("needs kubectl from hack/build-tools.sh (or set %s): %v", controlplane.BinDirEnv, err)
	return ""
}

// render returns what `kubectl kustomize dir` prints.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kubectl kustomize %s: %s", dir, stderr.String())
	return out
}

// overlay writes a kustomization of the base with components (names under components/) and
// the extra kustomization fields, and returns its directory. Kustomize refuses absolute
// paths, so it names the base and components relative to the overlay.
func overlay(t *testing.T, components []string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(dir, wd)
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "resources:\n- %s\n", filepath.Join(rel, "base"))
	if len(components) > 0 {
		b.WriteString("components:\n")
		for _, c := range components {
			fmt.Fprintf(&b, "- %s\n", filepath.Join(rel, "components", c))
		}
	}
	b.WriteString(extra)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o644))
	return dir
}

// rendered is a rendered installation: its objects in order, decoded with client-go's scheme.
type rendered []runtime.Object

// decode decodes a YAML stream into typed objects; an object client-go does not know fails.
func decode(t *testing.T, data []byte) rendered {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out rendered
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		require.NoError(t, err, "decoding:\n%s", doc)
		out = append(out, obj)
	}
}

// key names an object as "Kind namespace/name".
func key(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return obj.GetObjectKind().GroupVersionKind().Kind + " " + m.GetNamespace() + "/" + m.GetName()
}

// keys returns the keys of the objects, in order.
func (r rendered) keys() []string {
	out := make([]string, 0, len(r))
	for _, obj := range r {
		out = append(out, key(obj))
	}
	return out
}

// get returns the object of type T named name, failing the test when there is none.
func get[T runtime.Object](t *testing.T, r rendered, name string) T {
	t.Helper()
	for _, obj := range r {
		if o, ok := obj.(T); ok {
			if m, err := meta.Accessor(o); err == nil && m.GetName() == name {
				return o
			}
		}
	}
	var zero T
	require.Failf(t, "object not rendered", "%T %s in %v", zero, name, r.keys())
	return zero
}

// container returns the one container of a pod template.
func container(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	require.Len(t, spec.Containers, 1)
	return spec.Containers[0]
}

// fieldRefs returns the container's environment variables taken from the downward API.
func fieldRefs(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			out[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	return out
}

// metricsPort checks that the container serves /healthz, /readyz and /metrics on the port
// named metrics, the one its --metrics-bind-address gives, and returns that port.
func metricsPort(t *testing.T, c corev1.Container) int32 {
	t.Helper()
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" })
	require.GreaterOrEqual(t, i, 0, "a port named metrics")
	port := c.Ports[i].ContainerPort
	assert.Contains(t, c.Args, "--metrics-bind-address=:"+strconv.Itoa(int(port)), "the binary listens on the metrics port")
	for path, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if assert.NotNil(t, probe, path) && assert.NotNil(t, probe.HTTPGet, path) {
			assert.Equal(t, path, probe.HTTPGet.Path)
			assert.Equal(t, "metrics", probe.HTTPGet.Port.String())
		}
	}
	return port
}

// kubernetesPorts are the ports Kubernetes' own components listen on, on the host: kubelet,
// kube-proxy, controller manager, cloud controller manager and scheduler.
var kubernetesPorts = []int32{10248, 10249, 10250, 10255, 10256, 10257, 10258, 10259}

func TestBase(t *testing.T) {
	r := decode(t, render(t, "base"))

	t.Run("the namespace admits the node pods", func(t *testing.T) {
		ns := get[*corev1.Namespace](t, r, namespace)
		assert.Equal(t, "privileged", ns.Labels["pod-security.kubernetes.io/enforce"])
		for _, obj := range r {
			m, err := meta.Accessor(obj)
			require.NoError(t, err)
			if _, cluster := obj.(*corev1.Namespace); cluster || strings.HasPrefix(key(obj), "Cluster") {
				continue
			}
			assert.Equal(t, namespace, m.GetNamespace(), key(obj))
		}
	})

	var controllersPort, nodePort int32
	t.Run("the controllers Deployment", func(t *testing.T) {
		d := get[*appsv1.Deployment](t, r, controllersName)
		require.NotNil(t, d.Spec.Replicas)
		assert.Equal(t, int32(2), *d.Spec.Replicas, "one replica leads, one stands by")
		spec := d.Spec.Template.Spec
		assert.Equal(t, compose.ControllersServiceAccount, spec.ServiceAccountName)
		assert.Equal(t, controllersName, d.Spec.Template.Labels[compose.NameLabel])
		assert.Equal(t, new(int64(60)), spec.TerminationGracePeriodSeconds, "time for the uninstall")
		assert.True(t, spec.HostNetwork, "runs before the nodes have a pod network")
		for _, taint := range []string{"node.cloudprovider.kubernetes.io/uninitialized", "node.kubernetes.io/not-ready"} {
			assert.True(t, slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == taint }), "tolerates %s", taint)
		}
		c := container(t, spec)
		assert.Equal(t, images.ControllersImage, c.Image)
		assert.Empty(t, c.Command, "the image's entrypoint, the full build: the node build refuses controllers")
		assert.Equal(t, "controllers", c.Args[0])
		assert.Contains(t, c.Args, "--data-dir=/var/lib/k3snet")
		assert.Equal(t, map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "SERVICE_ACCOUNT": "spec.serviceAccountName"}, fieldRefs(c))
		controllersPort = metricsPort(t, c)
		mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/lib/k3snet" })
		require.GreaterOrEqual(t, mount, 0, "the data dir is mounted")
		vol := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
		require.GreaterOrEqual(t, vol, 0)
		assert.NotNil(t, spec.Volumes[vol].EmptyDir, "the data dir is an emptyDir")
	})

	t.Run("the node DaemonSet", func(t *testing.T) {
		ds := get[*appsv1.DaemonSet](t, r, nodeName)
		spec := ds.Spec.Template.Spec
		assert.Equal(t, compose.NodeServiceAccount, spec.ServiceAccountName)
		assert.Equal(t, nodeName, ds.Spec.Template.Labels[compose.NameLabel], "the controllers wait for the pods of this label at uninstall")
		assert.True(t, spec.HostNetwork, "programs the node's own iptables and ipsets")
		assert.Equal(t, []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, spec.Tolerations, "every node")
		assert.Equal(t, "system-node-critical", spec.PriorityClassName)
		c := container(t, spec)
		assert.Equal(t, images.ControllersImage, c.Image)
		assert.Equal(t, []string{images.NodeProgram}, c.Command, "the node build, which the install image carries beside /k3snet")
		assert.Equal(t, "node", c.Args[0])
		assert.Equal(t, map[string]string{"NODE_NAME": "spec.nodeName", "NODE_IP": "status.hostIPs", "POD_NAMESPACE": "metadata.namespace", "SERVICE_ACCOUNT": "spec.serviceAccountName"}, fieldRefs(c))
		nodePort = metricsPort(t, c)

		sc := c.SecurityContext
		require.NotNil(t, sc)
		assert.False(t, sc.Privileged != nil && *sc.Privileged, "not privileged")
		require.NotNil(t, sc.Capabilities)
		assert.Equal(t, []corev1.Capability{"NET_ADMIN", "NET_RAW"}, sc.Capabilities.Add)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)

		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
		}
		hostPaths := map[string]*corev1.HostPathVolumeSource{}
		for _, v := range spec.Volumes {
			hostPaths[v.Name] = v.HostPath
		}
		lock, ok := mounts["/run/xtables.lock"]
		require.True(t, ok, "the xtables lock is mounted")
		assert.False(t, lock.ReadOnly)
		if hp := hostPaths[lock.Name]; assert.NotNil(t, hp, "the lock is the host's") {
			assert.Equal(t, "/run/xtables.lock", hp.Path)
			assert.Equal(t, new(corev1.HostPathFileOrCreate), hp.Type)
		}
		modules, ok := mounts["/lib/modules"]
		require.True(t, ok, "/lib/modules is mounted")
		assert.True(t, modules.ReadOnly)
		if hp := hostPaths[modules.Name]; assert.NotNil(t, hp) {
			assert.Equal(t, "/lib/modules", hp.Path)
		}
	})

	t.Run("host ports clash with nothing on a node", func(t *testing.T) {
		assert.NotEqual(t, controllersPort, nodePort, "a node may run both")
		assert.NotContains(t, kubernetesPorts, controllersPort)
		assert.NotContains(t, kubernetesPorts, nodePort)
	})

	t.Run("identities and rights carry the uninstall finalizer", func(t *testing.T) {
		var finalized []string
		for _, obj := range r {
			switch obj.(type) {
			case *corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding:
				m, err := meta.Accessor(obj)
				require.NoError(t, err)
				assert.Equal(t, compose.PartOfValue, m.GetLabels()[compose.PartOfLabel], key(obj))
				assert.Equal(t, []string{compose.UninstallFinalizer}, m.GetFinalizers(), key(obj))
				finalized = append(finalized, key(obj))
			}
		}
		assert.Contains(t, finalized, "ServiceAccount "+namespace+"/"+compose.ControllersServiceAccount)
		assert.Contains(t, finalized, "ServiceAccount "+namespace+"/"+compose.NodeServiceAccount)
	})

	t.Run("every binding names a rendered role and ServiceAccount", func(t *testing.T) {
		have := map[string]bool{}
		for _, k := range r.keys() {
			have[k] = true
		}
		check := func(binding string, ref rbacv1.RoleRef, roleNamespace string, subjects []rbacv1.Subject) {
			assert.True(t, have[ref.Kind+" "+roleNamespace+"/"+ref.Name], "%s: role %s", binding, ref.Name)
			for _, s := range subjects {
				assert.True(t, have["ServiceAccount "+s.Namespace+"/"+s.Name], "%s: subject %s/%s", binding, s.Namespace, s.Name)
			}
		}
		for _, obj := range r {
			switch b := obj.(type) {
			case *rbacv1.ClusterRoleBinding:
				check(key(b), b.RoleRef, "", b.Subjects)
			case *rbacv1.RoleBinding:
				check(key(b), b.RoleRef, b.Namespace, b.Subjects)
			}
		}
	})
}

func TestTopLevelKustomizationIsTheBase(t *testing.T) {
	assert.Equal(t, string(render(t, "base")), string(render(t, ".")), "kubectl apply -k deploy/ installs the base")
}

// componentTests are the components and what each changes in the base: flags added to the
// controllers and to the node, objects removed.
var componentTests = []struct {
	component   string
	controllers []string
	node        []string
	removed     []string
}{
	{component: "disable-servicelb", controllers: []string{"--disable=servicelb"}},
	{component: "disable-coredns", controllers: []string{"--disable=coredns"}},
	{component: "disable-traefik", controllers: []string{"--disable=traefik"}},
	{component: "disable-helm-controller", controllers: []string{"--disable-helm-controller"}},
	{component: "disable-node-ipam", controllers: []string{"--disable-node-ipam"}},
	{component: "multi-cluster-cidr", controllers: []string{"--multi-cluster-cidr"}},
	{component: "disable-cloud-controller", controllers: []string{"--disable-cloud-controller"}, node: []string{"--disable-cloud-controller"}},
	{component: "disable-network-policy", node: []string{"--disable-network-policy"}},
	{component: "disable-deploy", controllers: []string{"--disable-deploy"}, removed: []string{"ClusterRole /k3snet:packaged", "ClusterRoleBinding /k3snet:packaged"}},
}

// workloadArgs returns the rendered controllers' and node's arguments, and r with both
// argument lists cleared.
func workloadArgs(t *testing.T, r rendered) (controllers, node []string, rest rendered) {
	t.Helper()
	out := make(rendered, 0, len(r))
	for _, obj := range r {
		obj = obj.DeepCopyObject()
		switch w := obj.(type) {
		case *appsv1.Deployment:
			controllers = w.Spec.Template.Spec.Containers[0].Args
			w.Spec.Template.Spec.Containers[0].Args = nil
		case *appsv1.DaemonSet:
			node = w.Spec.Template.Spec.Containers[0].Args
			w.Spec.Template.Spec.Containers[0].Args = nil
		}
		out = append(out, obj)
	}
	return controllers, node, out
}

func TestComponents(t *testing.T) {
	entries, err := os.ReadDir("components")
	require.NoError(t, err)
	var dirs, tested []string
	for _, e := range entries {
		dirs = append(dirs, e.Name())
	}
	for _, tt := range componentTests {
		tested = append(tested, tt.component)
	}
	assert.ElementsMatch(t, dirs, tested, "every component is tested")

	baseControllers, baseNode, base := workloadArgs(t, decode(t, render(t, "base")))
	var allControllers, allNode []string
	var allRemoved []string
	for _, tt := range componentTests {
		allControllers = append(allControllers, tt.controllers...)
		allNode = append(allNode, tt.node...)
		allRemoved = append(allRemoved, tt.removed...)
		t.Run(tt.component, func(t *testing.T) {
			controllers, node, got := workloadArgs(t, decode(t, render(t, overlay(t, []string{tt.component}, ""))))
			assert.Equal(t, slices.Concat(baseControllers, tt.controllers), controllers)
			assert.Equal(t, slices.Concat(baseNode, tt.node), node)
			want := slices.DeleteFunc(slices.Clone(base), func(obj runtime.Object) bool { return slices.Contains(tt.removed, key(obj)) })
			assert.Equal(t, want, got, "nothing else changes")
		})
	}
	t.Run("all components together", func(t *testing.T) {
		controllers, node, got := workloadArgs(t, decode(t, render(t, overlay(t, tested, ""))))
		assert.Equal(t, slices.Concat(baseControllers, allControllers), controllers)
		assert.Equal(t, slices.Concat(baseNode, allNode), node)
		assert.Equal(t, len(base)-len(allRemoved), len(got))
	})
}

func TestAnOverlayRenamesTheImage(t *testing.T) {
	r := decode(t, render(t, overlay(t, nil, "images:\n- name: k3snet.local/k3snet\n  newName: registry.example.com/k3snet\n  newTag: v2\n")))
	const want = "registry.example.com/k3snet:v2"
	assert.Equal(t, want, container(t, get[*appsv1.Deployment](t, r, controllersName).Spec.Template.Spec).Image)
	assert.Equal(t, want, container(t, get[*appsv1.DaemonSet](t, r, nodeName).Spec.Template.Spec).Image)
}
