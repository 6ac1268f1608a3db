package ccmstub_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/servicelb"
)

// With --disable-cloud-controller but ServiceLB on, the stub still runs, for its load-balancer
// half alone: a LoadBalancer Service gets its node's IP while nodes stay tainted.
func TestLoadBalancerHalfServesServicesWhenOnlyItIsOn(t *testing.T) {
	c := cluster.Get(t)
	lbNamespace := c.Namespace(t)
	ns := c.Namespace(t)
	name := testcluster.UniqueName("lb-only")
	// The enablelb label puts ServiceLB in allow-list mode, so only this test's node hosts
	// the LB pod whatever other nodes the shared cluster has.
	c.AddNodes(t, testcluster.Node(name,
		testcluster.Labels(map[string]string{"svccontroller.k3s.cattle.io/enablelb": "true"}),
		testcluster.InternalIP("10.0.9.1")))

	lb, err := servicelb.New(c.Client, servicelb.Options{Namespace: lbNamespace})
	require.NoError(t, err)
	stub, err := ccmstub.New(c.Client, ccmstub.Options{DisableNodes: true, LoadBalancer: lb})
	require.NoError(t, err)
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	t.Cleanup(factory.Shutdown)
	require.NoError(t, stub.Start(testContext(t), factory))

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 18080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
		},
	}
	_, err = c.Client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
	require.NoError(t, err)

	var ingress []corev1.LoadBalancerIngress
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		s, err := c.Client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ingress = s.Status.LoadBalancer.Ingress
		return len(ingress) == 1 && ingress[0].IP == "10.0.9.1", nil
	})
	require.NoError(t, err, "the Service should get its node's IP; ingress: %v", ingress)

	// Deleting the Service while the controller runs lets it remove its finalizer and the
	// DaemonSet.
	require.NoError(t, c.Client.CoreV1().Services(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}))
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	require.NoError(t, err, "the Service should be gone once ServiceLB released it")
	daemonSets, err := c.Client.AppsV1().DaemonSets(lbNamespace).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, daemonSets.Items, "the Service's DaemonSet is deleted with it")
}
