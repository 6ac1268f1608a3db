package alphaapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// APIServiceName is the APIService that routes networking.k8s.io/v1alpha1 here.
const APIServiceName = Version + "." + Group

// Priorities of the APIService: low, so that the group's built-in networking.k8s.io/v1 stays
// the preferred version and the group keeps its place in discovery.
const (
	groupPriorityMinimum = 1000
	versionPriority      = 1
)

const (
	fieldManager  = "k3snet-clustercidr-v1alpha1"
	managedByKey  = "app.kubernetes.io/managed-by"
	managedBy     = "k3snet"
	servicePort   = 443
	portName      = "https"
	sliceManager  = "clustercidr-v1alpha1.k3snet.io"
	availablePoll = 200 * time.Millisecond
)

var (
	apiServices    = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	services       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// Registration says where kube-apiserver finds the server.
type Registration struct {
	// Namespace and Service name the Service the APIService references (kube-system,
	// k3snet-clustercidr-v1alpha1 by default). It has no selector: its one endpoint is Address.
	Namespace, Service string
	// Address and Port are where the server listens. kube-apiserver runs with aggregator
	// routing and dials them directly; EndpointSlice validation refuses a loopback address.
	Address netip.Addr
	Port    int
	// CABundle is the PEM of the CA of the server's certificate (ServingCert's caPEM).
	CABundle []byte
}

func (r *Registration) defaults() {
	if r.Namespace == "" {
		r.Namespace = metav1.NamespaceSystem
	}
	if r.Service == "" {
		r.Service = "k3snet-clustercidr-v1alpha1"
	}
}

// ServerName is the name kube-apiserver expects in the server's certificate.
func (r Registration) ServerName() string {
	r.defaults()
	return r.Service + "." + r.Namespace + ".svc"
}

// Register creates or updates the Service, its EndpointSlice and the APIService, so a
// restarted server with a new port and certificate is found again.
func Register(ctx context.Context, dyn dynamic.Interface, r Registration) error {
	r.defaults()
	if !r.Address.IsValid() || r.Address.IsLoopback() || r.Port <= 0 {
		return fmt.Errorf("alphaapi: need a non-loopback address and a port, not %s:%d", r.Address, r.Port)
	}
	labels := map[string]any{managedByKey: managedBy}
	svc := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": r.Service, "namespace": r.Namespace, "labels": labels},
		"spec": map[string]any{
			"type":  "ClusterIP",
			"ports": []any{map[string]any{"name": portName, "port": servicePort, "protocol": "TCP", "targetPort": r.Port}},
		},
	}
	addressType := "IPv4"
	if r.Address.Unmap().Is6() {
		addressType = "IPv6"
	}
	slice := map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"metadata": map[string]any{"name": r.Service, "namespace": r.Namespace, "labels": map[string]any{
			managedByKey:                             managedBy,
			"kubernetes.io/service-name":             r.Service,
			"endpointslice.kubernetes.io/managed-by": sliceManager,
		}},
		"addressType": addressType,
		"endpoints":   []any{map[string]any{"addresses": []any{r.Address.Unmap().String()}, "conditions": map[string]any{"ready": true}}},
		"ports":       []any{map[string]any{"name": portName, "port": r.Port, "protocol": "TCP"}},
	}
	apiService := map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": APIServiceName, "labels": labels},
		"spec": map[string]any{
			"group": Group, "version": Version,
			"groupPriorityMinimum": groupPriorityMinimum, "versionPriority": versionPriority,
			"caBundle": base64.StdEncoding.EncodeToString(r.CABundle),
			"service":  map[string]any{"namespace": r.Namespace, "name": r.Service, "port": servicePort},
		},
	}
	for _, o := range []struct {
		gvr       schema.GroupVersionResource
		namespace string
		obj       map[string]any
	}{{services, r.Namespace, svc}, {endpointSlices, r.Namespace, slice}, {apiServices, "", apiService}} {
		u := &unstructured.Unstructured{Object: o.obj}
		if _, err := dyn.Resource(o.gvr).Namespace(o.namespace).Apply(ctx, u.GetName(), u,
			metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("alphaapi: applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// Unregister removes the APIService and its Service (the EndpointSlice with it) when k3snet
// made them, so that discovery has no unavailable networking.k8s.io/v1alpha1 to report.
func Unregister(ctx context.Context, dyn dynamic.Interface, namespace, service string) error {
	r := Registration{Namespace: namespace, Service: service}
	r.defaults()
	for _, o := range []struct {
		gvr             schema.GroupVersionResource
		namespace, name string
	}{{apiServices, "", APIServiceName}, {endpointSlices, r.Namespace, r.Service}, {services, r.Namespace, r.Service}} {
		client := dyn.Resource(o.gvr).Namespace(o.namespace)
		obj, err := client.Get(ctx, o.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("alphaapi: reading %s %s: %w", o.gvr.Resource, o.name, err)
		}
		if obj.GetLabels()[managedByKey] != managedBy {
			continue // someone else's
		}
		uid := obj.GetUID()
		err = client.Delete(ctx, o.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("alphaapi: deleting %s %s: %w", o.gvr.Resource, o.name, err)
		}
	}
	return nil
}

// WaitAvailable waits until kube-apiserver reports the APIService Available and relays a
// discovery request to the server, or ctx ends. The condition alone may be the one a previous
// run left; the relayed request shows the current caBundle and address work.
func WaitAvailable(ctx context.Context, dyn dynamic.Interface, disco discovery.DiscoveryInterface) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, availablePoll, true, func(ctx context.Context) (bool, error) {
		if _, err := disco.ServerResourcesForGroupVersion(alphaAPIVersion); err != nil {
			last = err.Error()
			return false, nil
		}
		obj, err := dyn.Resource(apiServices).Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, c := range conditions {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" {
				last = fmt.Sprintf("Available=%v (%v: %v)", m["status"], m["reason"], m["message"])
				return m["status"] == "True", nil
			}
		}
		last = "no Available condition"
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("alphaapi: APIService %s not available (last: %s): %w", APIServiceName, last, err)
	}
	return nil
}
