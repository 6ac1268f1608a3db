package nodejoin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestAgentConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  AgentConfig
	}{
		{name: "the zero value", cfg: AgentConfig{}},
		{name: "K3s's defaults", cfg: AgentConfig{
			ClusterCIDRs: []string{"10.42.0.0/16"}, ServiceCIDRs: []string{"10.43.0.0/16"},
			ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local",
		}},
		{name: "dual-stack with everything disabled", cfg: AgentConfig{
			ClusterCIDRs: []string{"10.42.0.0/16", "2001:cafe:42::/56"}, ServiceCIDRs: []string{"10.43.0.0/16", "2001:cafe:43::/112"},
			ClusterDNS: []string{"10.43.0.10", "2001:cafe:43::a"}, ClusterDomain: "example.internal",
			DisableNetworkPolicy: true, DisableServiceLB: true, DisableCloudController: true,
			SystemDefaultRegistry: "registry.example.com",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, err := newAgentConfigMap(tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, AgentConfigNamespace, cm.Namespace)
			assert.Equal(t, AgentConfigName, cm.Name)
			got, err := agentConfigFrom(cm)
			require.NoError(t, err)
			assert.Equal(t, tt.cfg, got)
		})
	}
}

func TestAgentConfigJSONNames(t *testing.T) {
	cm, err := newAgentConfigMap(AgentConfig{ClusterCIDRs: []string{"10.42.0.0/16"}, ClusterDomain: "cluster.local", DisableServiceLB: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"clusterCIDRs":["10.42.0.0/16"],"clusterDomain":"cluster.local","disableServiceLB":true}`, cm.Data[AgentConfigKey])
}

func TestAgentConfigFromIgnoresUnknownFieldsAndNamesBadData(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{AgentConfigKey: `{"clusterDomain":"a.b","fromANewerServer":1}`}}
	got, err := agentConfigFrom(cm)
	require.NoError(t, err)
	assert.Equal(t, AgentConfig{ClusterDomain: "a.b"}, got)

	_, err = agentConfigFrom(&corev1.ConfigMap{Data: map[string]string{AgentConfigKey: "{"}})
	require.ErrorContains(t, err, "decoding config.json")
	_, err = agentConfigFrom(&corev1.ConfigMap{})
	require.ErrorContains(t, err, "no key config.json")
}
