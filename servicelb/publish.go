package servicelb

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// refuseReserved stops serving a Service that claims a reserved host port: unlike an invalid
// spec, whose DaemonSet is left as it was, the point is to keep the port free, so a DaemonSet
// it had (the port changed, or the option is new) goes and its addresses are withdrawn. The
// Warning is absorbed like a bad spec's: the Service's next change requeues it.
func (c *Controller) refuseReserved(ctx context.Context, svc *corev1.Service, reserved field.ErrorList) error {
	key := cache.MetaObjectToName(svc)
	msg := (&invalidServiceError{errs: reserved}).Error()
	klog.FromContext(ctx).Info("Service claims a reserved host port", "err", msg)
	if err := c.deleteDaemonSets(ctx, key, svc, ""); err != nil {
		return err
	}
	if _, _, err := c.writeIngress(ctx, svc, c.storedIngress(svc), nil); err != nil {
		return err
	}
	c.warn(svc, ReasonSyncLoadBalancerFailed, msg)
	return nil
}

// ingress computes the status of svc from the caches, and returns the Service's LB
// pods it was computed from.
func (c *Controller) ingress(svc *corev1.Service) ([]corev1.LoadBalancerIngress, []*corev1.Pod, error) {
	pods, err := c.lbPodsOf(cache.MetaObjectToName(svc))
	if err != nil {
		return nil, nil, err
	}
	nodes := make(map[string]*corev1.Node, len(pods))
	for _, pod := range pods {
		if pod.Spec.NodeName == "" {
			continue
		}
		node, err := c.nodes.Get(pod.Spec.NodeName)
		if err == nil {
			nodes[node.Name] = node
		} else if !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("getting Node %s from the cache: %w", pod.Spec.NodeName, err)
		}
	}
	var slices []*discoveryv1.EndpointSlice
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		slices, err = c.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{
			discoveryv1.LabelServiceName: svc.Name,
		}))
		if err != nil {
			return nil, nil, fmt.Errorf("listing EndpointSlices from the cache: %w", err)
		}
	}
	return loadBalancerIngress(svc, pods, nodes, slices, c.opts.IPMode, c.keys), pods, nil
}

// warn emits a Warning on svc unless the last one emitted for it said the same.
func (c *Controller) warn(svc *corev1.Service, reason, message string) {
	key := cache.MetaObjectToName(svc)
	c.mu.Lock()
	same := c.warned[key] == reason+": "+message
	c.warned[key] = reason + ": " + message
	c.mu.Unlock()
	if !same {
		c.recorder.Event(svc, corev1.EventTypeWarning, reason, message)
	}
}

func (c *Controller) forgetWarning(key cache.ObjectName) {
	c.mu.Lock()
	delete(c.warned, key)
	c.mu.Unlock()
}

// storedIngress is the Service's ingress as the API server has it: our last write while the
// cache has not caught up with it, else the cache's.
func (c *Controller) storedIngress(svc *corev1.Service) []corev1.LoadBalancerIngress {
	if ours, ok := c.statuses.current(cache.MetaObjectToName(svc), svc.ResourceVersion); ok {
		return ours
	}
	return svc.Status.LoadBalancer.Ingress
}

// writeIngress patches status.loadBalancer.ingress through the status subresource when it
// differs by value from old, what is stored, and reports whether it wrote.
func (c *Controller) writeIngress(ctx context.Context, svc *corev1.Service, old, ingress []corev1.LoadBalancerIngress) (*corev1.Service, bool, error) {
	if ingressEqual(old, ingress) {
		return svc, false, nil
	}
	// A merge patch replaces the list whole; null removes it.
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": ingress}}})
	if err != nil {
		return nil, false, fmt.Errorf("encoding status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	out, err := c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch,
		metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, false, fmt.Errorf("patching status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	c.statuses.remember(cache.MetaObjectToName(svc), svc.ResourceVersion, ingress)
	c.metrics.statusUpdates.Inc()
	klog.FromContext(ctx).V(2).Info("Updated LoadBalancer status", "ingress", ingressAddresses(ingress))
	return out, true, nil
}
