package alphaapi

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func object(apiVersion, kind, namespace, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func TestUnregisterRemovesOnlyOurs(t *testing.T) {
	ours := map[string]string{managedByKey: managedBy}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		gone   bool
	}{
		{"k3snet's registration goes", ours, true},
		{"someone else's v1alpha1.networking.k8s.io stays", map[string]string{"owner": "them"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				apiServices: "APIServiceList", services: "ServiceList", endpointSlices: "EndpointSliceList"},
				object("apiregistration.k8s.io/v1", "APIService", "", APIServiceName, tc.labels),
				object("v1", "Service", "kube-system", "k3snet-clustercidr-v1alpha1", tc.labels),
				object("discovery.k8s.io/v1", "EndpointSlice", "kube-system", "k3snet-clustercidr-v1alpha1", tc.labels))
			require.NoError(t, Unregister(context.Background(), dyn, "", ""))
			for _, o := range []struct {
				gvr             schema.GroupVersionResource
				namespace, name string
			}{{apiServices, "", APIServiceName}, {services, "kube-system", "k3snet-clustercidr-v1alpha1"}, {endpointSlices, "kube-system", "k3snet-clustercidr-v1alpha1"}} {
				_, err := dyn.Resource(o.gvr).Namespace(o.namespace).Get(context.Background(), o.name, metav1.GetOptions{})
				assert.Equal(t, tc.gone, apierrors.IsNotFound(err), "%s: %v", o.gvr.Resource, err)
			}
		})
	}
	// Nothing registered: nothing to do.
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		apiServices: "APIServiceList", services: "ServiceList", endpointSlices: "EndpointSliceList"})
	assert.NoError(t, Unregister(context.Background(), dyn, "", ""))
}

func TestRegisterRefusesAnAddressKubeAPIServerCannotUse(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), nil)
	for _, addr := range []netip.Addr{{}, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
		err := Register(context.Background(), dyn, Registration{Address: addr, Port: 1234})
		assert.Error(t, err, "%s: EndpointSlice validation refuses loopback", addr)
	}
	assert.Empty(t, dyn.Actions(), "nothing was written")
}

func TestServerName(t *testing.T) {
	assert.Equal(t, "k3snet-clustercidr-v1alpha1.kube-system.svc", Registration{}.ServerName())
	assert.Equal(t, "x.y.svc", Registration{Namespace: "y", Service: "x"}.ServerName())
}
