package servicelb_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3snet/k3snet/servicelb"
)

// The placement and status rules are internal; this example shows them through the
// controller, run against a fake clientset: a LoadBalancer Service gets a DaemonSet named
// svclb-<service>-<uid[:8]> in kube-system, and once its pods are ready the Service's
// ingress lists the addresses of their nodes, each node by its ExternalIP if it has one,
// else its InternalIP.
func ExampleController() {
	// The deadline only keeps a broken controller from hanging the example.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := func(name string, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status:     corev1.NodeStatus{Addresses: addrs},
		}
	}
	client := fake.NewClientset(
		node("worker1", corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}),
		node("worker2",
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.12"},
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.12"}),
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "5e1f0c2a-77d4-4b8e-9f3a-0123456789ab"},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer,
				// The API server allocates these; the fake clientset does not.
				ClusterIP:  "10.43.0.20",
				ClusterIPs: []string{"10.43.0.20"},
				Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
				IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
	)
	// Watches opened before Start see every change the controller makes.
	dsWatch, err := client.AppsV1().DaemonSets(servicelb.DefaultNamespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	svcWatch, err := client.CoreV1().Services("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctrl, err := servicelb.New(client, servicelb.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := ctrl.Start(ctx, informers.NewSharedInformerFactory(client, 0)); err != nil {
		fmt.Println(err)
		return
	}

	ev, err := next(ctx, dsWatch, func(ev watch.Event) bool { return ev.Type == watch.Added })
	if err != nil {
		fmt.Println(err)
		return
	}
	ds := ev.Object.(*appsv1.DaemonSet)
	fmt.Println("DaemonSet", ds.Namespace+"/"+ds.Name)
	for _, c := range ds.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			fmt.Printf("  container %s: hostPort %d/%s, image %s\n", c.Name, p.HostPort, p.Protocol, c.Image)
		}
	}

	// The DaemonSet controller would now run one LB pod per node; here they are created by
	// hand, ready, with the DaemonSet's pod labels.
	for i, nodeName := range []string{"worker1", "worker2"} {
		if err := createReadyPod(ctx, client, ds, nodeName, fmt.Sprintf("10.42.%d.5", i)); err != nil {
			fmt.Println(err)
			return
		}
	}
	ev, err = next(ctx, svcWatch, func(ev watch.Event) bool {
		svc, ok := ev.Object.(*corev1.Service)
		return ok && len(svc.Status.LoadBalancer.Ingress) == 2
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	svc := ev.Object.(*corev1.Service)
	fmt.Println("finalizers", svc.Finalizers)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		fmt.Println("ingress", ing.IP, *ing.IPMode)
	}
	// Output:
	// DaemonSet kube-system/svclb-web-5e1f0c2a
	//   container lb-tcp-80: hostPort 80/TCP, image rancher/klipper-lb:v0.4.17
	// finalizers [service.kubernetes.io/load-balancer-cleanup]
	// ingress 192.168.1.11 VIP
	// ingress 203.0.113.12 VIP
}

// next returns the first event of w that match accepts, and stops w.
func next(ctx context.Context, w watch.Interface, match func(watch.Event) bool) (watch.Event, error) {
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return watch.Event{}, errors.New("watch closed")
			}
			if match(ev) {
				return ev, nil
			}
		case <-ctx.Done():
			return watch.Event{}, ctx.Err()
		}
	}
}

// createReadyPod creates the LB pod of ds on nodeName with address ip, Ready.
func createReadyPod(ctx context.Context, client kubernetes.Interface, ds *appsv1.DaemonSet, nodeName, ip string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ds.Namespace,
			Name:      ds.Name + "-" + nodeName,
			Labels:    ds.Spec.Template.Labels,
		},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: ds.Spec.Template.Spec.Containers},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      ip,
			PodIPs:     []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	_, err := client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// NewKeys builds the node labels K3s documents for choosing where LB pods run: enablelb
// turns on allow-list mode, lbpool puts nodes in pools.
func ExampleNewKeys() {
	keys := servicelb.NewKeys("k3s")
	fmt.Println(keys.EnableLB)
	fmt.Println(keys.LBPool)
	fmt.Println(keys.PoolLabel("pool1"))
	fmt.Println(servicelb.NewKeys("rke2").EnableLB)
	// Output:
	// svccontroller.k3s.cattle.io/enablelb
	// svccontroller.k3s.cattle.io/lbpool
	// lbpool.svccontroller.k3s.cattle.io/pool1
	// svccontroller.rke2.cattle.io/enablelb
}

// New validates the Options, every invalid field at once; nothing talks to the API server
// until Start.
func ExampleNew() {
	_, err := servicelb.New(fake.NewClientset(), servicelb.Options{
		IPMode:            "direct",
		ReservedHostPorts: []int32{10250, 70000},
	})
	fmt.Println(err)
	// Output:
	// servicelb: invalid options: ipMode "direct": must be VIP or Proxy
	// reserved host port 70000: must be between 1 and 65535
}
