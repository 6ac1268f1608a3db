package testcluster_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/k3snet/k3snet/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

func TestControlPlaneReportsItsRealVersion(t *testing.T) {
	c := cluster.Get(t)
	v, err := c.Client.Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, "v1.37.2", v.GitVersion, "kubectl cannot parse a v0.0.0-master version")
}

func TestDeploymentPodOnKwokNodeBecomesRunning(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	pool := testcluster.UniqueName("deploy")
	c.AddNodes(t, testcluster.Node(pool+"-0", testcluster.Labels(map[string]string{"pool": pool}), testcluster.InternalIP("192.0.2.10")))

	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, pool, nil),
		},
	}
	_, err := c.Client.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{})
	require.NoError(t, err)

	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		p := pods.Items[0]
		return p.Status.Phase == corev1.PodRunning && testcluster.PodReady(&p) && p.Status.PodIP != "", nil
	})
	require.NoError(t, err, "the Deployment's pod should be Running and Ready with a pod IP on the kwok node")
}

func TestHostPortIsEnforcedByTheScheduler(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	pool := testcluster.UniqueName("hostport")
	c.AddNodes(t,
		testcluster.Node(pool+"-0", testcluster.Labels(map[string]string{"pool": pool})),
		testcluster.Node(pool+"-1", testcluster.Labels(map[string]string{"pool": pool})),
	)
	port := []corev1.ContainerPort{{ContainerPort: 443, HostPort: 443, Protocol: corev1.ProtocolTCP}}
	first := daemonSet(ns, "first", pool, port)
	_, err := c.Client.AppsV1().DaemonSets(ns).Create(t.Context(), first, metav1.CreateOptions{})
	require.NoError(t, err)

	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		ds, err := c.Client.AppsV1().DaemonSets(ns).Get(ctx, "first", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ds.Status.DesiredNumberScheduled == 2 && ds.Status.NumberReady == 2, nil
	})
	require.NoError(t, err, "the first DaemonSet should run a ready pod on each of the two nodes")

	second := daemonSet(ns, "second", pool, port)
	_, err = c.Client.AppsV1().DaemonSets(ns).Create(t.Context(), second, metav1.CreateOptions{})
	require.NoError(t, err)

	var reasons []string
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("reason", "FailedScheduling").String(),
		})
		if err != nil {
			return false, err
		}
		reasons = reasons[:0]
		for _, e := range events.Items {
			reasons = append(reasons, e.Message)
		}
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=second"})
		if err != nil {
			return false, err
		}
		pending := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" {
				pending++
			}
		}
		return pending == 2 && len(reasons) > 0, nil
	})
	require.NoError(t, err, "both pods of the second DaemonSet should stay Pending; events: %v", reasons)
	assert.Contains(t, fmt.Sprint(reasons), "free ports")
}

func daemonSet(ns, name, pool string, ports []corev1.ContainerPort) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, pool, ports),
		},
	}
}

// podTemplate keeps the pods on this test's own nodes: the cluster is shared by the package.
func podTemplate(labels map[string]string, pool string, ports []corev1.ContainerPort) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"pool": pool},
			Containers:   []corev1.Container{{Name: "c", Image: "example.invalid/pause:1", Ports: ports}},
		},
	}
}

func TestImpersonateRoleGrantsTheRoleOnlyAndCleansUp(t *testing.T) {
	c := cluster.Get(t)
	user := testcluster.UniqueName("impersonate")
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "any-name"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "get"}},
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
		},
	}
	t.Run("the user may do what the role allows and nothing else", func(t *testing.T) {
		cfg := c.ImpersonateRole(t, user, role)
		client, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		_, err = client.CoreV1().ConfigMaps("kube-system").List(t.Context(), metav1.ListOptions{Limit: 1})
		require.NoError(t, err, "ImpersonateRole returns once the role is in effect")
		_, err = client.CoreV1().Secrets("kube-system").List(t.Context(), metav1.ListOptions{Limit: 1})
		assert.True(t, apierrors.IsForbidden(err), "secrets are not in the role: %v", err)

		again := c.ImpersonateRole(t, user, role)
		assert.Equal(t, user, again.Impersonate.UserName, "a second call for the same user finds both objects there")
	})
	_, err := c.Client.RbacV1().ClusterRoles().Get(t.Context(), user, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the ClusterRole is deleted with the test: %v", err)
	_, err = c.Client.RbacV1().ClusterRoleBindings().Get(t.Context(), user, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the ClusterRoleBinding is deleted with the test: %v", err)
	assert.Equal(t, "any-name", role.Name, "the caller's role is not changed")
}
