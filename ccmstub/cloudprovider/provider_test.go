package cloudprovider

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2/ktesting"
)

func TestFactoryReadsK3sCloudConfig(t *testing.T) {
	tests := []struct {
		name        string
		defaults    Options
		config      io.Reader // nil: no --cloud-config
		wantNodes   bool
		wantLB      bool
		wantErr     error
		wantErrText string
	}{
		{name: "no config file keeps the defaults, both on", wantNodes: true, wantLB: true},
		{name: "an empty config file keeps the defaults", config: strings.NewReader(""), wantNodes: true, wantLB: true},
		{name: "K3s's file with servicelb disabled turns the load balancer off",
			config:    strings.NewReader(`{"lbEnabled":false,"lbImage":"rancher/klipper-lb:v0.4.17","lbNamespace":"kube-system","nodeEnabled":true,"rootless":false}`),
			wantNodes: true},
		{name: "K3s's file with the cloud controller disabled turns InstancesV2 off",
			config: strings.NewReader(`{"lbEnabled":true,"nodeEnabled":false}`), wantLB: true},
		{name: "a key the file lacks keeps the default passed in",
			defaults: Options{DisableLoadBalancer: true}, config: strings.NewReader(`{"nodeEnabled":true}`), wantNodes: true},
		{name: "both off is refused as K3s refuses it",
			config: strings.NewReader(`{"lbEnabled":false,"nodeEnabled":false}`), wantErr: ErrAllDisabled},
		{name: "a file that is not JSON is an error", config: strings.NewReader(`lbEnabled: [`), wantErrText: "reading the cloud config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cloud, err := Factory(tt.defaults)(tt.config)
			if tt.wantErr != nil || tt.wantErrText != "" {
				require.Error(t, err)
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				}
				assert.ErrorContains(t, err, tt.wantErrText)
				return
			}
			require.NoError(t, err)
			_, nodes := cloud.InstancesV2()
			_, lb := cloud.LoadBalancer()
			assert.Equal(t, tt.wantNodes, nodes, "InstancesV2")
			assert.Equal(t, tt.wantLB, lb, "LoadBalancer")
			_, ok := cloud.Instances()
			assert.False(t, ok, "Instances (V1)")
			_, ok = cloud.Zones()
			assert.False(t, ok, "Zones")
			_, ok = cloud.Routes()
			assert.False(t, ok, "Routes")
			_, ok = cloud.Clusters()
			assert.False(t, ok, "Clusters")
			assert.False(t, cloud.HasClusterID())
		})
	}
}

func TestProviderName(t *testing.T) {
	p, err := New(Options{})
	require.NoError(t, err)
	assert.Equal(t, "k3s", p.ProviderName())
	p, err = New(Options{Program: "rke2"})
	require.NoError(t, err)
	assert.Equal(t, "rke2", p.ProviderName())
	_, err = New(Options{Program: "not a name"})
	require.Error(t, err)
}

func node(name string, annotations, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: labels}}
}

func TestInstanceMetadata(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	p, err := New(Options{})
	require.NoError(t, err)
	inst, ok := p.InstancesV2()
	require.True(t, ok)

	_, err = inst.InstanceMetadata(ctx, node("bare", nil, nil))
	require.ErrorIs(t, err, ErrAddressesNotSet, "the upstream controller retries and the node keeps its taint")

	_, err = inst.InstanceMetadata(ctx, node("garbage", map[string]string{"k3s.io/internal-ip": "x"}, nil))
	require.ErrorIs(t, err, ErrAddressesNotSet)

	got, err := inst.InstanceMetadata(ctx, node("a",
		map[string]string{"k3s.io/internal-ip": "10.0.0.1,fd00::1,bogus", "k3s.io/external-ip": "203.0.113.7", "k3s.io/hostname": "host-a"},
		map[string]string{corev1.LabelTopologyZone: "z1"}))
	require.NoError(t, err)
	assert.Equal(t, &cloudprovider.InstanceMetadata{
		ProviderID:   "k3s://a",
		InstanceType: "k3s",
		Zone:         "z1",
		NodeAddresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
			{Type: corev1.NodeInternalIP, Address: "fd00::1"},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
			{Type: corev1.NodeHostName, Address: "host-a"},
		},
	}, got)

	exists, err := inst.InstanceExists(ctx, node("a", nil, nil))
	require.NoError(t, err)
	assert.True(t, exists, "a node is never deleted for lack of an instance")
	shutdown, err := inst.InstanceShutdown(ctx, node("a", nil, nil))
	require.NoError(t, err)
	assert.False(t, shutdown, "a node never gets the shutdown taint")
}

func TestLoadBalancerIsImplementedElsewhere(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	p, err := New(Options{})
	require.NoError(t, err)
	lb, ok := p.LoadBalancer()
	require.True(t, ok)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "35a5ccb3-0000-4000-8000-000000000000"}}

	status, err := lb.EnsureLoadBalancer(ctx, "cluster", svc, nil)
	assert.Nil(t, status)
	assert.True(t, errors.Is(err, cloudprovider.ImplementedElsewhere), "EnsureLoadBalancer: %v", err)
	assert.ErrorIs(t, lb.UpdateLoadBalancer(ctx, "cluster", svc, nil), cloudprovider.ImplementedElsewhere)
	_, exists, err := lb.GetLoadBalancer(ctx, "cluster", svc)
	require.NoError(t, err)
	assert.False(t, exists, "so the upstream controller only drops its finalizer on deletion")
	assert.NoError(t, lb.EnsureLoadBalancerDeleted(ctx, "cluster", svc))
	assert.Equal(t, "a35a5ccb300004000800000000000000", lb.GetLoadBalancerName(ctx, "cluster", svc))
}
