package servicelb

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Small builders plus functional tweaks for the tables.

var testKeys = NewKeys("")

const testUID = types.UID("35a5ccb3-4d4f-4a1c-9e52-0c7f8d3b2a11")

type svcTweak func(*corev1.Service)

// makeService is a single-stack IPv4 LoadBalancer Service default/web on 80/TCP, ETP Cluster.
func makeService(tweaks ...svcTweak) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: testUID},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ClusterIP:             "10.43.0.10",
			ClusterIPs:            []string{"10.43.0.10"},
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []corev1.ServicePort{svcPort(corev1.ProtocolTCP, 80, 30080)},
		},
	}
	for _, t := range tweaks {
		t(svc)
	}
	return svc
}

func svcPort(proto corev1.Protocol, port, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Protocol: proto, Port: port, NodePort: nodePort}
}

func withName(ns, name string) svcTweak {
	return func(s *corev1.Service) { s.Namespace, s.Name = ns, name }
}

func withUID(uid types.UID) svcTweak { return func(s *corev1.Service) { s.UID = uid } }

func withPorts(ports ...corev1.ServicePort) svcTweak {
	return func(s *corev1.Service) { s.Spec.Ports = ports }
}

func withLocal() svcTweak {
	return func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
}

// withStack sets the cluster IPs and the families that follow from them, in order.
func withStack(ips ...string) svcTweak {
	return func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies = ips[0], ips, nil
		for _, ip := range ips {
			fam := corev1.IPv4Protocol
			if strings.Contains(ip, ":") {
				fam = corev1.IPv6Protocol
			}
			s.Spec.IPFamilies = append(s.Spec.IPFamilies, fam)
		}
	}
}

func withAnnotation(k, v string) svcTweak {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func withLabel(k, v string) svcTweak {
	return func(s *corev1.Service) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}

func withSourceRanges(r ...string) svcTweak {
	return func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

func withPool(pool string) svcTweak { return withLabel(testKeys.LBPool, pool) }

type nodeTweak func(*corev1.Node)

// makeNode is a node without labels, taints or addresses until tweaks add them.
func makeNode(name string, tweaks ...nodeTweak) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, t := range tweaks {
		t(n)
	}
	return n
}

func nodeLabel(k, v string) nodeTweak {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
}

func enableLB(v string) nodeTweak { return nodeLabel(testKeys.EnableLB, v) }

func taint(key, value string, effect corev1.TaintEffect) nodeTweak {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func internalIP(ips ...string) nodeTweak { return addresses(corev1.NodeInternalIP, ips...) }
func externalIP(ips ...string) nodeTweak { return addresses(corev1.NodeExternalIP, ips...) }

func addresses(typ corev1.NodeAddressType, ips ...string) nodeTweak {
	return func(n *corev1.Node) {
		for _, ip := range ips {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: ip})
		}
	}
}

func nodeDeleting() nodeTweak {
	return func(n *corev1.Node) { n.DeletionTimestamp = &metav1.Time{} }
}

func nodeMap(nodes ...*corev1.Node) map[string]*corev1.Node {
	m := make(map[string]*corev1.Node, len(nodes))
	for _, n := range nodes {
		m[n.Name] = n
	}
	return m
}

type podTweak func(*corev1.Pod)

// makePod is a running pod ns/name bound to node, without ports.
func makePod(ns, name, node string, tweaks ...podTweak) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, t := range tweaks {
		t(p)
	}
	return p
}

func hostPortOn(port int32, proto corev1.Protocol) podTweak {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto})
	}
}

// hostNetworkPort declares a container port on a hostNetwork pod, hostPort left unset as in a
// manifest before API defaulting.
func hostNetworkPort(port int32, proto corev1.Protocol) podTweak {
	return func(p *corev1.Pod) {
		p.Spec.HostNetwork = true
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, Protocol: proto})
	}
}

// initContainerPort adds an init container holding a TCP host port; restart Always makes it a
// sidecar.
func initContainerPort(port int32, restart *corev1.ContainerRestartPolicy) podTweak {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
			Name: "init", RestartPolicy: restart,
			Ports: []corev1.ContainerPort{{ContainerPort: port, HostPort: port, Protocol: corev1.ProtocolTCP}},
		})
	}
}

func containerPort(port int32) podTweak {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, Protocol: corev1.ProtocolTCP})
	}
}

// svclbOf labels the pod as an LB pod of svc and makes its DaemonSet its controller.
func svclbOf(svc *corev1.Service) podTweak {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{testKeys.SvcName: svc.Name, testKeys.SvcNamespace: svc.Namespace}
		ownedBy(daemonSetName(svc.Name, svc.UID))(p)
	}
}

func ownedBy(name string) podTweak {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: name, Controller: new(true)}}
	}
}

func phase(ph corev1.PodPhase) podTweak { return func(p *corev1.Pod) { p.Status.Phase = ph } }

// ready gives the pod an IP and a Ready condition with the given status.
func ready(ip string, status corev1.ConditionStatus) podTweak {
	return func(p *corev1.Pod) {
		p.Status.PodIP = ip
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	}
}

// lbPod is a ready LB pod of svc on node.
func lbPod(svc *corev1.Service, node, ip string) *corev1.Pod {
	return makePod("kube-system", "svclb-"+node, node, svclbOf(svc), ready(ip, corev1.ConditionTrue))
}

// endpoint is an EndpointSlice endpoint on node; ready nil means unknown (treated as ready).
func endpoint(node string, ready *bool, kind string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{"10.42.0.1"},
		NodeName:   &node,
		Conditions: discoveryv1.EndpointConditions{Ready: ready},
		TargetRef:  &corev1.ObjectReference{Kind: kind, Name: "backend"},
	}
}

func makeSlice(ns, svcName string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svcName + "-abcde", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svcName},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}
