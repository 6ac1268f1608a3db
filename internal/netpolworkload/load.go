package netpolworkload

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// loadWriters is how many writes Load keeps in flight.
const loadWriters = 16

// NodeObjects are the workload's Nodes with their pod CIDRs. They carry no kwok annotation:
// nothing runs their pods, which Load reports Running itself. A LocalNode that exists
// already is left as it is by Load.
func (w Workload) NodeObjects() []*corev1.Node {
	nodes := w.size().NodeObjects()
	for i, n := range nodes {
		n.Name = w.nodeName(i)
		n.Labels[corev1.LabelHostname] = n.Name
		n.Annotations, n.Status = nil, corev1.NodeStatus{}
	}
	return nodes
}

// Load creates the workload in a cluster: its Nodes, Namespaces (with their default
// ServiceAccount, which a Pod create needs and the controller manager makes in its own time),
// Pods with their Running status and addresses, and NetworkPolicies. Objects that exist
// already are kept, so a failed Load can be run again.
func Load(ctx context.Context, client kubernetes.Interface, w Workload) error {
	nodes := w.NodeObjects()
	if err := parallel(len(nodes), func(i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, nodes[i], metav1.CreateOptions{})
		return ignoreExists(err)
	}); err != nil {
		return fmt.Errorf("creating nodes: %w", err)
	}
	namespaces := w.NamespaceObjects()
	if err := parallel(len(namespaces), func(i int) error {
		if _, err := client.CoreV1().Namespaces().Create(ctx, namespaces[i], metav1.CreateOptions{}); ignoreExists(err) != nil {
			return err
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespaces[i].Name}}
		_, err := client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
		return ignoreExists(err)
	}); err != nil {
		return fmt.Errorf("creating namespaces: %w", err)
	}
	pods := w.PodObjects()
	if err := parallel(len(pods), func(i int) error { return createRunningPod(ctx, client, pods[i]) }); err != nil {
		return fmt.Errorf("creating pods: %w", err)
	}
	policies := w.PolicyObjects()
	if err := parallel(len(policies), func(i int) error {
		_, err := client.NetworkingV1().NetworkPolicies(policies[i].Namespace).Create(ctx, policies[i], metav1.CreateOptions{})
		return ignoreExists(err)
	}); err != nil {
		return fmt.Errorf("creating network policies: %w", err)
	}
	return nil
}

// Unload deletes what Load created: the Namespaces (and with them their Pods and policies)
// and the Nodes but a LocalNode. Deletion is asynchronous; errors are joined, NotFound ignored.
func Unload(ctx context.Context, client kubernetes.Interface, w Workload) error {
	namespaces, nodes := w.NamespaceObjects(), w.NodeObjects()
	if w.LocalNode != "" {
		nodes = nodes[1:] // not ours
	}
	return parallel(len(namespaces)+len(nodes), func(i int) error {
		var err error
		if i < len(namespaces) {
			err = client.CoreV1().Namespaces().Delete(ctx, namespaces[i].Name, metav1.DeleteOptions{})
		} else {
			err = client.CoreV1().Nodes().Delete(ctx, nodes[i-len(namespaces)].Name, metav1.DeleteOptions{})
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// createRunningPod creates pod and then writes its status, which a create drops. On a node
// kwok manages (a benchmark server's own node) kwok writes the status too; a conflict is
// retried on the fresh pod.
func createRunningPod(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	_, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if ignoreExists(err) != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		current.Status = pod.Status
		_, err = client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// parallel runs do for 0..n-1 with loadWriters in flight and returns the first error.
func parallel(n int, do func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(loadWriters)
	for i := range n {
		g.Go(func() error { return do(i) })
	}
	return g.Wait()
}
