package packaged

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

// testContext is t's context with logs going to t.
func testContext(t *testing.T) context.Context {
	return klog.NewContext(t.Context(), ktesting.NewLogger(t, ktesting.NewConfig()))
}

// harness is a deploy controller on a directory, driven pass by pass by the test.
type harness struct {
	c       *Controller
	dir     string
	dyn     dynamic.Interface
	client  kubernetes.Interface
	counter *testcluster.WriteCounter
}

// newHarness builds a Controller on dir whose API requests are counted, installs the
// package's CRDs and starts its Events, as Start does, but leaves passes to the test.
func newHarness(t *testing.T, c *testcluster.Cluster, dir string, disables map[string]bool) *harness {
	t.Helper()
	ctx := testContext(t)
	counter := &testcluster.WriteCounter{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(counter.Wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	ctrl, err := New(client, Options{ManifestsDir: dir, Dynamic: dyn, Disables: disables})
	require.NoError(t, err)
	require.NoError(t, ctrl.applier.installCRDs(ctx))
	stop := ctrl.startEvents(ctx)
	t.Cleanup(stop)
	return &harness{c: ctrl, dir: dir, dyn: dyn, client: client, counter: counter}
}

// pass runs one pass and returns its error.
func (h *harness) pass(t *testing.T) error {
	t.Helper()
	_, err := h.c.pass(testContext(t))
	return err
}

// write writes a manifest file under the harness's directory.
func (h *harness) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(h.dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func (h *harness) get(t *testing.T, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	return h.dyn.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
}

func (h *harness) requireGone(t *testing.T, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	_, err := h.get(t, gvr, ns, name)
	require.True(t, apierrors.IsNotFound(err), "%s %s/%s should be gone, got %v", gvr.Resource, ns, name, err)
}

// waitEvent waits for an Event with reason on the Addon name and returns its message.
func (h *harness) waitEvent(t *testing.T, c *testcluster.Cluster, name, reason string) string {
	t.Helper()
	var msg string
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		events, err := c.Client.CoreV1().Events(addonNamespace).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": addonKind, "involvedObject.name": name, "reason": reason,
		}.String()})
		if err != nil || len(events.Items) == 0 {
			return false, err
		}
		msg = events.Items[0].Message
		return true, nil
	})
	require.NoError(t, err, "Event %s on Addon %s", reason, name)
	return msg
}

func configMap(name string, data string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: kube-system\ndata:\n  k: %q\n", name, data)
}

var (
	gvrConfigMap  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecret     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrHelmChart  = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

func TestPackagedComponentsDeployRestartAndDisable(t *testing.T) {
	c := cluster.Get(t)
	dir := t.TempDir()
	vars := Vars{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.43.0.10")}}
	require.NoError(t, Stage(dir, vars, nil))

	h := newHarness(t, c, dir, nil)
	require.NoError(t, h.pass(t))

	svc, err := c.Client.CoreV1().Services("kube-system").Get(t.Context(), "kube-dns", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "10.43.0.10", svc.Spec.ClusterIP, "kube-dns has the cluster DNS IP")
	assert.Equal(t, []corev1.ServicePort{
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP},
	}, withoutTargetPorts(svc.Spec.Ports))
	_, err = h.get(t, gvrDeployment, "kube-system", "coredns")
	require.NoError(t, err)
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["Corefile"], "kubernetes cluster.local in-addr.arpa ip6.arpa")
	assert.Equal(t, ownerHash("coredns"), cm.Labels[labelHash], "objects carry K3s's owner label")
	for _, name := range []string{"traefik", "traefik-crd"} {
		hc, err := h.get(t, gvrHelmChart, "kube-system", name)
		require.NoError(t, err, "HelmChart %s", name)
		content, _, _ := unstructured.NestedString(hc.Object, "spec", "chartContent")
		assert.NotEmpty(t, content, "HelmChart %s carries its chart", name)
	}
	addon, err := h.get(t, addonResource(), addonNamespace, "coredns")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "coredns.yaml"), mustString(t, addon, "spec", "source"))
	assert.Len(t, addonChecksum(addon), 64)
	assert.Contains(t, addon.GetAnnotations()[annotationGVKs], "apps/v1, Kind=Deployment")
	assert.Contains(t, h.waitEvent(t, c, "coredns", ReasonAppliedManifest), filepath.Join(dir, "coredns.yaml"))

	t.Run("a restart with nothing changed makes zero writes", func(t *testing.T) {
		require.NoError(t, Stage(dir, vars, nil))
		restarted := newHarness(t, c, dir, nil)
		require.NoError(t, restarted.pass(t))
		require.NoError(t, restarted.pass(t))
		assert.Empty(t, restarted.counter.Since(0), "CRD installation and two passes write nothing")
	})

	t.Run("an edit is applied and undone by the next Stage", func(t *testing.T) {
		p := filepath.Join(dir, "coredns.yaml")
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(data), "cache 30", "cache 99", 1)), 0o600))
		require.NoError(t, h.pass(t))
		cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
		require.NoError(t, err)
		require.Contains(t, cm.Data["Corefile"], "cache 99")

		require.NoError(t, Stage(dir, vars, nil))
		staged, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, string(data), string(staged))
		require.NoError(t, h.pass(t))
		cm, err = c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Contains(t, cm.Data["Corefile"], "cache 30")
	})

	t.Run("disable removes the objects, the file and the Addon, idempotently", func(t *testing.T) {
		disabled := newHarness(t, c, dir, map[string]bool{"traefik": true})
		require.NoError(t, disabled.pass(t))
		disabled.requireGone(t, gvrHelmChart, "kube-system", "traefik")
		disabled.requireGone(t, gvrHelmChart, "kube-system", "traefik-crd")
		disabled.requireGone(t, addonResource(), addonNamespace, "traefik")
		assert.NoFileExists(t, filepath.Join(dir, "traefik.yaml"))
		_, err := disabled.get(t, gvrDeployment, "kube-system", "coredns")
		assert.NoError(t, err, "CoreDNS stays")

		require.NoError(t, Stage(dir, vars, map[string]bool{"traefik": true}))
		before := disabled.counter.Count()
		require.NoError(t, disabled.pass(t))
		assert.Empty(t, disabled.counter.Since(before), "disabling again does nothing")
	})

	t.Run("an existing Traefik v1 is not staged over", func(t *testing.T) {
		hc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
			"metadata": map[string]any{"name": "traefik", "namespace": "kube-system"},
			"spec":     map[string]any{"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-1.81.0.tgz"},
		}}
		_, err := h.dyn.Resource(gvrHelmChart).Namespace("kube-system").Create(t.Context(), hc, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = h.dyn.Resource(gvrHelmChart).Namespace("kube-system").Delete(context.Background(), "traefik", metav1.DeleteOptions{})
		})
		v1, err := TraefikV1Installed(testContext(t), h.dyn, h.c.recorder)
		require.NoError(t, err)
		require.True(t, v1)
		other := t.TempDir()
		require.NoError(t, Stage(other, vars, map[string]bool{"traefik": v1}))
		assert.NoFileExists(t, filepath.Join(other, "traefik.yaml"))
		err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			events, err := c.Client.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
				"involvedObject.kind": "HelmChart", "involvedObject.name": "traefik", "reason": ReasonTraefikV1Installed,
			}.String()})
			return err == nil && len(events.Items) > 0, err
		})
		assert.NoError(t, err, "an Event on the HelmChart says why")
	})
}

func withoutTargetPorts(ports []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, 0, len(ports))
	for _, p := range ports {
		out = append(out, corev1.ServicePort{Name: p.Name, Port: p.Port, Protocol: p.Protocol})
	}
	return out
}

func mustString(t *testing.T, obj *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	s, ok, err := unstructured.NestedString(obj.Object, fields...)
	require.NoError(t, err)
	require.True(t, ok, "%v is set", fields)
	return s
}

// crd returns a minimal namespaced CRD of kind in group, version v1.
func crd(group, kind string) string {
	plural := strings.ToLower(kind) + "s"
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]s.%[2]s
spec:
  group: %[2]s
  scope: Namespaced
  names: {kind: %[3]s, plural: %[1]s, singular: %[4]s, listKind: %[3]sList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, plural, group, kind, strings.ToLower(kind))
}

func TestCRDsApplyBeforeTheirResources(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	prefix := testcluster.UniqueName("crd")
	group := prefix + ".example.com"
	// The CR comes first in its file, and another file earlier in sort order holds a CR
	// whose CRD is in a later file: both must apply in one pass (K3s #5081).
	h.write(t, prefix+"-a.yaml", fmt.Sprintf("apiVersion: %s/v1\nkind: Gadget\nmetadata: {name: early, namespace: default}\n", group))
	h.write(t, prefix+"-b.yaml", fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata: {name: same-file, namespace: default}\nspec: {size: 3}\n---\n%s---\n%s", group, crd(group, "Widget"), crd(group, "Gadget")))
	require.NoError(t, h.pass(t))

	for kind, name := range map[string]string{"widgets": "same-file", "gadgets": "early"} {
		_, err := h.get(t, schema.GroupVersionResource{Group: group, Version: "v1", Resource: kind}, "default", name)
		assert.NoError(t, err, "%s %s", kind, name)
	}
}

func TestBrokenFilesFailAloneAndAreRetried(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	prefix := testcluster.UniqueName("broken")
	h.write(t, prefix+"-invalid.yaml", "apiVersion: v1\nkind: [unclosed\n")
	h.write(t, prefix+"-unknown.yaml", "apiVersion: nowhere.example.com/v1\nkind: Nothing\nmetadata: {name: x}\n")
	h.write(t, prefix+"-rejected.yaml", configMap("Not_A_Valid_Name", "x"))
	h.write(t, prefix+"-good.yaml", configMap(prefix+"-good", "x"))

	require.Error(t, h.pass(t))
	_, err := h.get(t, gvrConfigMap, "kube-system", prefix+"-good")
	require.NoError(t, err, "the good file applies although others fail")
	assert.Contains(t, h.waitEvent(t, c, prefix+"-invalid", ReasonParseManifestFailed), "failed")
	h.waitEvent(t, c, prefix+"-unknown", ReasonApplyManifestFailed)
	h.waitEvent(t, c, prefix+"-rejected", ReasonApplyManifestFailed)
	addon, err := h.get(t, addonResource(), addonNamespace, prefix+"-invalid")
	require.NoError(t, err)
	assert.Empty(t, addonChecksum(addon), "the checksum is written only after success")

	h.write(t, prefix+"-invalid.yaml", configMap(prefix+"-fixed", "y"))
	require.NoError(t, os.Remove(filepath.Join(h.dir, prefix+"-unknown.yaml")))
	require.NoError(t, os.Remove(filepath.Join(h.dir, prefix+"-rejected.yaml")))
	require.NoError(t, h.pass(t), "the fixed file is retried")
	_, err = h.get(t, gvrConfigMap, "kube-system", prefix+"-fixed")
	assert.NoError(t, err)
}

func TestObjectsLeavingAFileArePruned(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	prefix := testcluster.UniqueName("prune")
	secret := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s-s, namespace: kube-system}\nstringData: {k: v}\n", prefix)
	h.write(t, prefix+".yaml", configMap(prefix+"-a", "1")+"---\n"+configMap(prefix+"-b", "1")+"---\n"+secret)
	require.NoError(t, h.pass(t))
	_, err := h.get(t, gvrSecret, "kube-system", prefix+"-s")
	require.NoError(t, err)

	// A second ConfigMap and the only Secret (so its kind) leave the file (K3s #5559, #11975).
	h.write(t, prefix+".yaml", configMap(prefix+"-a", "2"))
	require.NoError(t, h.pass(t))
	h.requireGone(t, gvrConfigMap, "kube-system", prefix+"-b")
	h.requireGone(t, gvrSecret, "kube-system", prefix+"-s")
	a, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), prefix+"-a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "2", a.Data["k"])
}

func TestObjectsK3sCreatedAreAdopted(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	prefix := testcluster.UniqueName("adopt")
	// What K3s's deploy controller leaves behind: its owner label and annotations,
	// fields owned by another manager.
	for _, name := range []string{prefix + "-kept", prefix + "-gone"} {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system",
				Labels:      map[string]string{labelHash: ownerHash(prefix)},
				Annotations: map[string]string{annotationOwnerGVK: addonGVKString, annotationOwnerName: prefix, annotationOwnerNamespace: addonNamespace},
			},
			Data: map[string]string{"k": "from-k3s"},
		}
		_, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(t.Context(), cm, metav1.CreateOptions{FieldManager: "deploy@k3s"})
		require.NoError(t, err)
	}
	h.write(t, prefix+".yaml", configMap(prefix+"-kept", "from-k3snet"))
	require.NoError(t, h.pass(t))

	kept, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), prefix+"-kept", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "from-k3snet", kept.Data["k"], "the file's fields win over the old manager's")
	h.requireGone(t, gvrConfigMap, "kube-system", prefix+"-gone")
}

func TestDisabledUserManifestAndSkipFiles(t *testing.T) {
	c := cluster.Get(t)
	dir := t.TempDir()
	h := newHarness(t, c, dir, nil)
	prefix := testcluster.UniqueName("user")
	h.write(t, filepath.Join(prefix+"-folder", "x.yaml"), configMap(prefix+"-x", "1"))
	h.write(t, prefix+"-frozen.yaml", configMap(prefix+"-frozen", "1"))
	require.NoError(t, h.pass(t))

	// A .skip file freezes its manifest: changes are no longer applied.
	h.write(t, prefix+"-frozen.yaml.skip", "")
	h.write(t, prefix+"-frozen.yaml", configMap(prefix+"-frozen", "2"))
	require.NoError(t, h.pass(t))
	frozen, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), prefix+"-frozen", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "1", frozen.Data["k"])

	// Disabling a folder removes what its files applied.
	disabled := newHarness(t, c, dir, map[string]bool{prefix + "-folder": true})
	require.NoError(t, disabled.pass(t))
	disabled.requireGone(t, gvrConfigMap, "kube-system", prefix+"-x")
	disabled.requireGone(t, addonResource(), addonNamespace, prefix+"-folder.x")
	assert.NoFileExists(t, filepath.Join(dir, prefix+"-folder", "x.yaml"))
}

func TestClusterCIDRFromTheK3sDocsIsStoredInTheXK8sGroup(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	name := testcluster.UniqueName("cc")
	// A minimal stand-in for the CRD the clustercidr package installs.
	ccCRD := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clustercidrs.networking.x-k8s.io
spec:
  group: networking.x-k8s.io
  scope: Cluster
  names: {kind: ClusterCIDR, plural: clustercidrs, singular: clustercidr, listKind: ClusterCIDRList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	h.write(t, name+"-crd.yaml", ccCRD)
	h.write(t, name+".yaml", fmt.Sprintf(`apiVersion: networking.k8s.io/v1alpha1
kind: ClusterCIDR
metadata:
  name: %s
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions:
      - {key: kubernetes.io/hostname, operator: In, values: [worker2]}
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
`, name))
	require.NoError(t, h.pass(t))
	cc, err := h.get(t, schema.GroupVersionResource{Group: "networking.x-k8s.io", Version: "v1", Resource: "clustercidrs"}, "", name)
	require.NoError(t, err)
	assert.Equal(t, "10.247.0.0/16", mustString(t, cc, "spec", "ipv4"))
}

func TestFilesSharingABasenameKeepTheirObjects(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	prefix := testcluster.UniqueName("same")
	// The same basename in two folders: K3s shares one Addon and each file prunes the
	// other's objects (K3s #9500). Each gets its own Addon here.
	h.write(t, filepath.Join("a", prefix+".yaml"), configMap(prefix+"-a", "1"))
	h.write(t, filepath.Join("b", prefix+".yaml"), configMap(prefix+"-b", "1"))
	// A top-level file and foo.custom.yaml beside it map to the same K3s name: the one
	// that came first keeps it, the other is refused with a Warning and prunes nothing.
	h.write(t, prefix+".yaml", configMap(prefix+"-top", "1"))
	require.NoError(t, h.pass(t))
	h.write(t, prefix+".custom.yaml", configMap(prefix+"-custom", "1"))
	err := h.pass(t)
	require.ErrorIs(t, err, errAddonNameConflict)
	require.ErrorIs(t, h.pass(t), errAddonNameConflict, "the conflict stays until a file is renamed")

	for _, name := range []string{prefix + "-a", prefix + "-b", prefix + "-top"} {
		_, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), name, metav1.GetOptions{})
		assert.NoError(t, err, "ConfigMap %s survives the passes", name)
	}
	h.requireGone(t, gvrConfigMap, "kube-system", prefix+"-custom")
	for _, name := range []string{"a." + prefix, "b." + prefix} {
		addon, err := h.get(t, addonResource(), addonNamespace, name)
		require.NoError(t, err, "Addon %s", name)
		assert.NotEmpty(t, addonChecksum(addon))
	}
	addon, err := h.get(t, addonResource(), addonNamespace, prefix)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(h.dir, prefix+".yaml"), mustString(t, addon, "spec", "source"), "the top-level file keeps K3s's Addon name")
	msg := h.waitEvent(t, c, prefix, ReasonAddonNameConflict)
	assert.Contains(t, msg, prefix+".custom.yaml")
	assert.Contains(t, msg, "rename one of the files")
}

func TestOnlyRegularManifestsWithinTheLimitAreRead(t *testing.T) {
	c := cluster.Get(t)
	h := newHarness(t, c, t.TempDir(), nil)
	h.c.maxManifestBytes = 4 << 10
	prefix := testcluster.UniqueName("special")
	target := filepath.Join(t.TempDir(), "target.yaml")
	require.NoError(t, os.WriteFile(target, []byte(configMap(prefix+"-linked", "1")), 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(h.dir, prefix+"-linked.yaml")))
	fifo := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	require.NoError(t, os.Symlink(fifo, filepath.Join(h.dir, prefix+"-fifo.yaml")))
	require.NoError(t, os.Symlink("/dev/zero", filepath.Join(h.dir, prefix+"-zero.yaml")))
	h.write(t, prefix+"-big.yaml", configMap(prefix+"-big", strings.Repeat("x", 8<<10)))

	// A pass that blocked on the pipe or read /dev/zero without end would never return.
	err := h.pass(t)
	require.ErrorIs(t, err, errNotRegular)
	require.ErrorIs(t, err, errManifestTooLarge)
	_, err = c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), prefix+"-linked", metav1.GetOptions{})
	assert.NoError(t, err, "a symlink to a regular file is followed, as K3s follows it")
	assert.Contains(t, h.waitEvent(t, c, prefix+"-fifo", ReasonReadManifestFailed), "named pipe")
	assert.Contains(t, h.waitEvent(t, c, prefix+"-zero", ReasonReadManifestFailed), "device")
	assert.Contains(t, h.waitEvent(t, c, prefix+"-big", ReasonReadManifestFailed), "larger than the limit of 4096 bytes")
	h.requireGone(t, gvrConfigMap, "kube-system", prefix+"-big")
}
