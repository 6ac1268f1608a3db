package agent

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// kubeProxyConfig is kube-proxy's configuration file, as K3s runs it: iptables mode, the
// cluster CIDRs for telling pod traffic from outside traffic, and conntrack sysctls left alone
// (K3s passes --conntrack-max-per-core=0 and zero timeouts for the same reason: the host owns
// them). When the process may not lower OOM scores, kube-proxy keeps its own.
func kubeProxyConfig(c *Config, restrictOOMScoreAdj bool) *kubeproxyv1alpha1.KubeProxyConfiguration {
	kc := &kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta:           metav1.TypeMeta{APIVersion: "kubeproxy.config.k8s.io/v1alpha1", Kind: "KubeProxyConfiguration"},
		HostnameOverride:   c.NodeName,
		Mode:               kubeproxyv1alpha1.ProxyMode("iptables"),
		ClusterCIDR:        joinPrefixes(c.ClusterCIDRs),
		HealthzBindAddress: "127.0.0.1:10256",
		MetricsBindAddress: "127.0.0.1:10249",
		Conntrack: kubeproxyv1alpha1.KubeProxyConntrackConfiguration{
			MaxPerCore:            ptr.To[int32](0),
			TCPEstablishedTimeout: &metav1.Duration{},
			TCPCloseWaitTimeout:   &metav1.Duration{},
		},
	}
	kc.ClientConnection.Kubeconfig = c.KubeProxyKubeconfig
	if restrictOOMScoreAdj {
		kc.OOMScoreAdj = ptr.To[int32](0)
	}
	return kc
}

// renderKubeProxyConfig is kubeProxyConfig as the YAML file kube-proxy reads.
func renderKubeProxyConfig(c *Config, restrictOOMScoreAdj bool) ([]byte, error) {
	out, err := yaml.Marshal(kubeProxyConfig(c, restrictOOMScoreAdj))
	if err != nil {
		return nil, fmt.Errorf("rendering the kube-proxy configuration: %w", err)
	}
	return out, nil
}

// kubeProxyArgs are kube-proxy's flags: the config file, then K3s's --kube-proxy-arg.
func kubeProxyArgs(c *Config, configFile string) []string {
	return append([]string{"--config=" + configFile}, extraArgs(c.KubeProxyArgs)...)
}

func joinPrefixes[T fmt.Stringer](items []T) string {
	s := make([]string, 0, len(items))
	for _, it := range items {
		s = append(s, it.String())
	}
	return strings.Join(s, ",")
}
