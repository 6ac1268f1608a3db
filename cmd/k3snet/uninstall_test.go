package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/netpol"
	"github.com/k3snet/k3snet/servicelb"
)

// protected is the metadata every object of the manifests carries: k3snet's label and the
// uninstall finalizer.
func protected(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{compose.PartOfLabel: compose.PartOfValue},
		Finalizers: []string{compose.UninstallFinalizer}}
}

// installation is what deploy/ installs, made by the test in a namespace of its own: the two
// ServiceAccounts, the controllers' roles (each package's ClusterRole, the uninstall role and
// their Leases) and the nodes' (netpol's, the annotations', reading their own ServiceAccount),
// all protected by the finalizer.
type installation struct {
	namespace string
	// kubeconfig authenticates as the controllers' ServiceAccount.
	kubeconfig string
	// nodeToken authenticates as the node pods' ServiceAccount.
	nodeToken string
	// objects are what `kubectl delete -k` deletes, namespace last.
	deletes []func(context.Context) error
}

func install(t *testing.T, c *testcluster.Cluster) *installation {
	t.Helper()
	ctx := t.Context()
	ns := c.Namespace(t)
	in := &installation{namespace: ns}
	core, rbac := c.Client.CoreV1(), c.Client.RbacV1()
	for _, sa := range []string{compose.ControllersServiceAccount, compose.NodeServiceAccount} {
		_, err := core.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: protected(sa, ns)}, metav1.CreateOptions{})
		require.NoError(t, err)
		in.deletes = append(in.deletes, func(ctx context.Context) error {
			return core.ServiceAccounts(ns).Delete(ctx, sa, metav1.DeleteOptions{})
		})
	}
	subject := func(sa string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}}
	}
	for _, r := range []struct {
		role *rbacv1.ClusterRole
		sa   string
	}{
		{ccmstub.ClusterRole(), compose.ControllersServiceAccount},
		{servicelb.ClusterRole(), compose.ControllersServiceAccount},
		{clustercidr.ClusterRole(), compose.ControllersServiceAccount},
		{compose.UninstallClusterRole(), compose.ControllersServiceAccount},
		{netpol.ClusterRole(), compose.NodeServiceAccount},
		{compose.NodeAnnotationsClusterRole(), compose.NodeServiceAccount},
	} {
		name := r.role.Name + "-" + ns // ClusterRoles are cluster-wide; the test's must not clash
		r.role.ObjectMeta = protected(name, "")
		_, err := rbac.ClusterRoles().Create(ctx, r.role, metav1.CreateOptions{})
		require.NoError(t, err)
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: protected(name, ""), Subjects: subject(r.sa),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
		_, err = rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
		require.NoError(t, err)
		in.deletes = append(in.deletes,
			func(ctx context.Context) error {
				return rbac.ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
			},
			func(ctx context.Context) error { return rbac.ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	for _, r := range []struct {
		role *rbacv1.Role
		sa   string
	}{
		{compose.LeaderElectionRole(ns), compose.ControllersServiceAccount},
		{compose.NodeSelfRole(ns), compose.NodeServiceAccount},
	} {
		name := r.role.Name
		r.role.ObjectMeta = protected(name, ns)
		_, err := rbac.Roles(ns).Create(ctx, r.role, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: protected(name, ns), Subjects: subject(r.sa),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		in.deletes = append(in.deletes,
			func(ctx context.Context) error {
				return rbac.RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})
			},
			func(ctx context.Context) error { return rbac.Roles(ns).Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	in.deletes = append(in.deletes, func(ctx context.Context) error { return core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	token := func(sa string) string {
		tr, err := core.ServiceAccounts(ns).CreateToken(ctx, sa,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
		require.NoError(t, err)
		return tr.Status.Token
	}
	in.kubeconfig = kubeconfigWith(t, c, "", token(compose.ControllersServiceAccount))
	in.nodeToken = token(compose.NodeServiceAccount)
	// A failed test must not leave objects no one will ever release.
	t.Cleanup(func() { releaseEverything(t, c) })
	return in
}

// uninstall deletes what `kubectl delete -k deploy/` deletes.
func (in *installation) uninstall(t *testing.T) {
	t.Helper()
	for _, del := range in.deletes {
		require.NoError(t, del(t.Context()))
	}
}

// releaseEverything is `k3snet uninstall` run as the test's administrator.
func releaseEverything(t *testing.T, c *testcluster.Cluster) {
	meta, err := metadata.NewForConfig(c.Config)
	require.NoError(t, err)
	const ns = "k3snet-test-nothing-here" // no node pods nor DaemonSets: only the finalizers
	logger, _ := ktesting.NewTestContext(t)
	ctx := klog.NewContext(context.Background(), logger) // t.Context has ended in a cleanup
	assert.NoError(t, compose.UninstallCluster(ctx, c.Client, meta, compose.ClusterUninstall{Namespace: ns, ServiceLBNamespace: ns}))
}

var protectedKinds = []schema.GroupVersionResource{
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	{Version: "v1", Resource: "serviceaccounts"},
}

// finalized lists the objects of k3snet that still carry the uninstall finalizer.
func finalized(t *testing.T, c *testcluster.Cluster) []string {
	t.Helper()
	meta, err := metadata.NewForConfig(c.Config)
	require.NoError(t, err)
	var out []string
	for _, gvr := range protectedKinds {
		list, err := meta.Resource(gvr).List(t.Context(), metav1.ListOptions{LabelSelector: compose.PartOfLabel + "=" + compose.PartOfValue})
		require.NoError(t, err)
		for _, obj := range list.Items {
			if slices.Contains(obj.Finalizers, compose.UninstallFinalizer) {
				out = append(out, gvr.Resource+"/"+obj.Namespace+"/"+obj.Name)
			}
		}
	}
	return out
}

// hasLBFinalizer reports whether ServiceLB still holds the Service.
func hasLBFinalizer(t *testing.T, c *testcluster.Cluster, ns, name string) bool {
	svc, err := c.Client.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return slices.Contains(svc.Finalizers, servicelb.LoadBalancerCleanupFinalizer)
}

// clusterCIDRFinalizers counts the ClusterCIDRs the allocator still holds.
func clusterCIDRFinalizers(t *testing.T, c *testcluster.Cluster) int {
	meta, err := metadata.NewForConfig(c.Config)
	require.NoError(t, err)
	gvr := schema.GroupVersionResource{Group: clustercidr.Group, Version: clustercidr.Version, Resource: clustercidr.Resource}
	list, err := meta.Resource(gvr).List(t.Context(), metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return 0 // no ClusterCIDR API: --multi-cluster-cidr never ran
	}
	require.NoError(t, err)
	n := 0
	for _, obj := range list.Items {
		if slices.Contains(obj.Finalizers, clustercidr.Finalizer) {
			n++
		}
	}
	return n
}

// serveSomething gives running controllers what an uninstall must undo: a node for a pod CIDR
// from the default ClusterCIDR, and a LoadBalancer Service "web" in appNS on port, served by a
// DaemonSet in lbNS.
func serveSomething(t *testing.T, c *testcluster.Cluster, lbNS, appNS, nodeIP string, port int32) {
	t.Helper()
	c.AddNodes(t, testcluster.Node(testcluster.UniqueName("un"), testcluster.Annotations(map[string]string{"k3s.io/internal-ip": nodeIP})))
	createLB(t, c, appNS, "web", port)
	eventually(t, "ServiceLB serves the Service with a DaemonSet", func() bool {
		return len(daemonSets(t, c, lbNS, svclbSelector("web"))) == 1 && hasLBFinalizer(t, c, appNS, "web")
	})
	eventually(t, "the allocator holds the default ClusterCIDR", func() bool { return clusterCIDRFinalizers(t, c) > 0 })
}

// TestControllersUninstallWhenTheirServiceAccountIsDeleted installs the controllers as deploy/
// does, with their own ServiceAccount's token and only the roles the manifests give them. A
// plain SIGTERM (an upgrade, a restart) leaves everything serving. After what `kubectl delete
// -k` does, a SIGTERM removes ServiceLB's DaemonSets and releases its Services, the
// ClusterCIDRs and every finalizer of k3snet, so the namespace and every object go, and the
// garbage collector removes the uninstall grant with the namespace.
func TestControllersUninstallWhenTheirServiceAccountIsDeleted(t *testing.T) {
	c := cluster.Get(t)
	ctx := t.Context()
	in := install(t, c)
	lbNS, appNS := c.Namespace(t), c.Namespace(t)
	env := []string{"POD_NAMESPACE=" + in.namespace, "SERVICE_ACCOUNT=" + compose.ControllersServiceAccount}
	start := func() *process {
		return startK3snet(t, nil, env, "controllers", "--kubeconfig="+in.kubeconfig, "--servicelb-namespace="+lbNS,
			"--disable-deploy", "--multi-cluster-cidr", "--data-dir="+t.TempDir(), "--metrics-bind-address="+freeAddr(t))
	}
	p := start()
	eventually(t, "the controllers make their uninstall grant, owned by their namespace", func() bool {
		b, err := c.Client.RbacV1().ClusterRoleBindings().Get(ctx, compose.UninstallGrantName, metav1.GetOptions{})
		return err == nil && len(b.OwnerReferences) == 1 && b.OwnerReferences[0].Name == in.namespace
	})
	serveSomething(t, c, lbNS, appNS, "192.0.2.90", 8090)

	p.stop(t)
	assert.Len(t, daemonSets(t, c, lbNS, svclbSelector("web")), 1, "a plain SIGTERM leaves the DaemonSets serving")
	assert.True(t, hasLBFinalizer(t, c, appNS, "web"))
	assert.NotEmpty(t, finalized(t, c), "and every finalizer in place")

	p = start()
	eventually(t, "the restarted controllers lead ServiceLB again", func() bool {
		return strings.HasSuffix(leaseHolder(t, c, in.namespace, "k3snet-cloud-controller"), "_"+p.pid())
	})
	in.uninstall(t)
	p.stop(t)
	assert.Empty(t, daemonSets(t, c, lbNS, "svccontroller.k3s.cattle.io/nodeselector"), "no LB DaemonSet is left")
	assert.False(t, hasLBFinalizer(t, c, appNS, "web"), "the Service is released")
	assert.Zero(t, clusterCIDRFinalizers(t, c), "the ClusterCIDRs are released")
	assert.Empty(t, finalized(t, c), "no k3snet finalizer is left")
	for _, sa := range []string{compose.ControllersServiceAccount, compose.NodeServiceAccount} {
		_, err := c.Client.CoreV1().ServiceAccounts(in.namespace).Get(ctx, sa, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "ServiceAccount %s is gone: %v", sa, err)
	}
	require.Eventually(t, func() bool {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, in.namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, time.Second, "the namespace goes")
	require.Eventually(t, func() bool {
		_, errRole := c.Client.RbacV1().ClusterRoles().Get(ctx, compose.UninstallGrantName, metav1.GetOptions{})
		_, errBinding := c.Client.RbacV1().ClusterRoleBindings().Get(ctx, compose.UninstallGrantName, metav1.GetOptions{})
		return apierrors.IsNotFound(errRole) && apierrors.IsNotFound(errBinding)
	}, 2*time.Minute, time.Second, "the garbage collector removes the uninstall grant with its namespace")
}

// TestUninstallCommandReleasesWhatStoppedControllersLeft runs `k3snet uninstall` as an
// administrator after the controllers stopped without uninstalling (scaled to zero): it
// removes ServiceLB's DaemonSets and releases the Services, the ClusterCIDRs and every k3snet
// finalizer.
func TestUninstallCommandReleasesWhatStoppedControllersLeft(t *testing.T) {
	c := cluster.Get(t)
	in := install(t, c)
	lbNS, appNS := c.Namespace(t), c.Namespace(t)
	p := startK3snet(t, nil, nil, "controllers", "--kubeconfig="+c.Kubeconfig, "--lease-namespace="+in.namespace,
		"--servicelb-namespace="+lbNS, "--disable-deploy", "--multi-cluster-cidr", "--data-dir="+t.TempDir(), "--metrics-bind-address="+freeAddr(t))
	serveSomething(t, c, lbNS, appNS, "192.0.2.91", 8091)
	p.stop(t)
	require.NotEmpty(t, finalized(t, c))

	out, err := exec.Command(binary(t), "uninstall", "--kubeconfig="+c.Kubeconfig, "--namespace="+in.namespace,
		"--servicelb-namespace="+lbNS).CombinedOutput()
	t.Logf("k3snet uninstall:\n%s", out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "out of reach from here", "it says the nodes' rules are not its to remove")
	assert.Empty(t, daemonSets(t, c, lbNS, "svccontroller.k3s.cattle.io/nodeselector"), "no LB DaemonSet is left")
	assert.False(t, hasLBFinalizer(t, c, appNS, "web"), "the Service is released")
	assert.Zero(t, clusterCIDRFinalizers(t, c), "the ClusterCIDRs are released")
	assert.Empty(t, finalized(t, c), "no k3snet finalizer is left")
}
