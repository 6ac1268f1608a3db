package servicelb

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// serviceIndex indexes the LB pods and DaemonSets by the Service they serve, "namespace/name"
// from their svcnamespace and svcname labels. A sync reads its own Service's objects through
// it: a label selector over the lister walks every LB pod of the namespace, and with 2,000
// Services on 50 nodes that is 100,000 pods for each sync of each Service.
const serviceIndex = "service"

// portIndex indexes the LB pods by the host ports they hold ("80/TCP", see hostPortsOf).
// A Service without a ready LB pod is placed against the pods holding one of its ports
// (podsHoldingPorts) rather than an index of every LB pod's ports built for each sync.
const portIndex = "hostPort"

func hostPortIndexFunc(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("indexing by host port: unexpected %T", obj)
	}
	var out []string
	for hp := range hostPortsOf(pod) {
		if s := hp.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// serviceIndexFunc returns the index function of serviceIndex for keys.
func serviceIndexFunc(keys Keys) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		meta, ok := obj.(metav1.Object)
		if !ok {
			return nil, fmt.Errorf("indexing by Service: unexpected %T", obj)
		}
		name, ns := meta.GetLabels()[keys.SvcName], meta.GetLabels()[keys.SvcNamespace]
		if name == "" || ns == "" {
			return nil, nil
		}
		return []string{cache.ObjectName{Namespace: ns, Name: name}.String()}, nil
	}
}

// useLBCaches reads the LB pods and DaemonSets from these informers, which it indexes by
// Service. It must run before they start: an informer refuses new indexes once running.
func (c *Controller) useLBCaches(pods, daemonSets cache.SharedIndexInformer) error {
	if err := pods.AddIndexers(cache.Indexers{serviceIndex: serviceIndexFunc(c.keys), portIndex: hostPortIndexFunc}); err != nil {
		return fmt.Errorf("adding the LB pod indexes: %w", err)
	}
	if err := daemonSets.AddIndexers(cache.Indexers{serviceIndex: serviceIndexFunc(c.keys)}); err != nil {
		return fmt.Errorf("adding the DaemonSet index: %w", err)
	}
	c.pods, c.podIndex = corelisters.NewPodLister(pods.GetIndexer()), pods.GetIndexer()
	c.daemonSets, c.daemonSetIndex = appslisters.NewDaemonSetLister(daemonSets.GetIndexer()), daemonSets.GetIndexer()
	return nil
}

// lbPodsOf returns the LB pods of the Service key from the cache.
func (c *Controller) lbPodsOf(key cache.ObjectName) ([]*corev1.Pod, error) {
	pods, err := byIndex[*corev1.Pod](c.podIndex, serviceIndex, key.String())
	if err != nil {
		return nil, fmt.Errorf("listing LB pods of %s from the cache: %w", key, err)
	}
	return pods, nil
}

// podsHoldingPorts returns the LB pods from the cache that hold one of svc's ports on some
// node, each once: what placeLoadBalancer needs to know of the others' host ports.
func (c *Controller) podsHoldingPorts(svc *corev1.Service) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	seen := map[*corev1.Pod]bool{}
	for _, sp := range svc.Spec.Ports {
		holding, err := byIndex[*corev1.Pod](c.podIndex, portIndex, newHostPort(sp.Port, sp.Protocol).String())
		if err != nil {
			return nil, fmt.Errorf("listing LB pods on port %d from the cache: %w", sp.Port, err)
		}
		for _, pod := range holding {
			if !seen[pod] {
				seen[pod] = true
				pods = append(pods, pod)
			}
		}
	}
	return pods, nil
}

// daemonSetsOf returns the DaemonSets of the Service key from the cache.
func (c *Controller) daemonSetsOf(key cache.ObjectName) ([]*appsv1.DaemonSet, error) {
	dss, err := byIndex[*appsv1.DaemonSet](c.daemonSetIndex, serviceIndex, key.String())
	if err != nil {
		return nil, fmt.Errorf("listing DaemonSets of %s from the cache: %w", key, err)
	}
	return dss, nil
}

// byIndex returns the objects of type T that indexer files under value in index.
func byIndex[T any](indexer cache.Indexer, index, value string) ([]T, error) {
	objs, err := indexer.ByIndex(index, value)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		if t, ok := obj.(T); ok {
			out = append(out, t)
		}
	}
	return out, nil
}
