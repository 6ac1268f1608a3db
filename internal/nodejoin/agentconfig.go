package nodejoin

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// The ConfigMap that carries AgentConfig to agents.
const (
	// AgentConfigNamespace and AgentConfigName name the ConfigMap.
	AgentConfigNamespace = "kube-system"
	AgentConfigName      = "k3snet-agent-config"
	// AgentConfigKey is the ConfigMap key holding AgentConfig as JSON.
	AgentConfigKey = "config.json"
)

// AgentConfig holds the cluster settings K3s's supervisor hands every agent when it joins:
// the agent cannot learn them from its own flags, because they are the server's.
type AgentConfig struct {
	// ClusterCIDRs are the pod ranges (--cluster-cidr), one per IP family.
	ClusterCIDRs []string `json:"clusterCIDRs,omitempty"`
	// ServiceCIDRs are the Service ClusterIP ranges (--service-cidr).
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	// ClusterDNS are the cluster DNS Service addresses the kubelet puts in pods' resolv.conf
	// (--cluster-dns).
	ClusterDNS []string `json:"clusterDNS,omitempty"`
	// ClusterDomain is the cluster's DNS domain (--cluster-domain, K3s default cluster.local).
	ClusterDomain string `json:"clusterDomain,omitempty"`
	// DisableNetworkPolicy is --disable-network-policy: agents run no NetworkPolicy controller.
	DisableNetworkPolicy bool `json:"disableNetworkPolicy,omitempty"`
	// DisableServiceLB is --disable=servicelb: agents expect no ServiceLB pods.
	DisableServiceLB bool `json:"disableServiceLB,omitempty"`
	// DisableCloudController is --disable-cloud-controller: agents do not annotate their
	// Nodes for the embedded cloud controller.
	DisableCloudController bool `json:"disableCloudController,omitempty"`
	// SystemDefaultRegistry is --system-default-registry, the registry prefix of system images.
	SystemDefaultRegistry string `json:"systemDefaultRegistry,omitempty"`
	// ServiceNodePortRange is --service-node-port-range ("30000-32767"), the NodePorts an
	// agent's NetworkPolicy rules leave open; empty means K3s's default.
	ServiceNodePortRange string `json:"serviceNodePortRange,omitempty"`
}

// newAgentConfigMap is the ConfigMap holding cfg.
func newAgentConfigMap(cfg AgentConfig) (*corev1.ConfigMap, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the agent config: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   typeMeta(corev1.SchemeGroupVersion.String(), "ConfigMap"),
		ObjectMeta: objectMeta(AgentConfigNamespace, AgentConfigName),
		Data:       map[string]string{AgentConfigKey: string(data)},
	}, nil
}

// agentConfigFrom reads AgentConfig from the ConfigMap. Unknown fields are ignored, so an
// older agent joins a newer server.
func agentConfigFrom(cm *corev1.ConfigMap) (AgentConfig, error) {
	data, ok := cm.Data[AgentConfigKey]
	if !ok {
		return AgentConfig{}, fmt.Errorf("ConfigMap %s/%s has no key %s", cm.Namespace, cm.Name, AgentConfigKey)
	}
	var cfg AgentConfig
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		return AgentConfig{}, fmt.Errorf("decoding %s of ConfigMap %s/%s: %w", AgentConfigKey, cm.Namespace, cm.Name, err)
	}
	return cfg, nil
}
