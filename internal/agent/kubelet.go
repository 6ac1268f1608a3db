package agent

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// ServiceLB's pods set these sysctls; a stock kubelet refuses them as unsafe (the pod fails
// with SysctlForbidden), so K3s's kubelet allows them while ServiceLB is on.
var forwardingSysctls = []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}

// kubeletConfig is the kubelet's configuration file, as K3s configures its embedded kubelet
// where it matters here: cgroupfs (K3s's default without systemd), client certificates signed
// by the cluster CA plus webhook authentication and authorization (kube-apiserver reaches it
// for logs and exec), no read-only port, the cluster's DNS, and the allowances the host needs
// (cgroup v1 and swap are tolerated, as K3s does on such hosts).
func kubeletConfig(c *Config, l Layout, cgroupV1 bool) *kubeletv1beta1.KubeletConfiguration {
	kc := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		Address:  "0.0.0.0",
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: c.CACertFile},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{
			Mode:    kubeletv1beta1.KubeletAuthorizationModeWebhook,
			Webhook: kubeletv1beta1.KubeletWebhookAuthorization{CacheAuthorizedTTL: metav1.Duration{Duration: 5 * time.Minute}, CacheUnauthorizedTTL: metav1.Duration{Duration: 30 * time.Second}},
		},
		CgroupDriver:             "cgroupfs",
		ClusterDomain:            c.ClusterDomain,
		ContainerRuntimeEndpoint: "unix://" + l.ContainerdSocket,
		EvictionHard:             map[string]string{"imagefs.available": evictionFree, "nodefs.available": evictionFree},
		FailSwapOn:               ptr.To(false),
		HealthzBindAddress:       "127.0.0.1",
		PodLogsDir:               l.PodLogs,
		ReadOnlyPort:             0,
		RotateCertificates:       c.KubeletBootstrapKubeconfig != "",
		SerializeImagePulls:      ptr.To(false),
		StaticPodPath:            l.PodManifests,
		// The kubelet generates a self-signed serving certificate in its cert dir; the API
		// server does not verify kubelets' certificates (no --kubelet-certificate-authority).
		TLSCertFile: "",
	}
	for _, ip := range c.ClusterDNS {
		kc.ClusterDNS = append(kc.ClusterDNS, ip.String())
	}
	if root, ok := argValue(c.KubeletArgs, "cgroup-root"); ok {
		// The flag wins anyway; in the file, Killall finds the node's cgroups.
		kc.CgroupRoot = root
	}
	if c.AllowForwardingSysctls {
		kc.AllowedUnsafeSysctls = append([]string(nil), forwardingSysctls...)
	}
	if cgroupV1 {
		// kubelet 1.35+ refuses cgroup v1 hosts unless told otherwise.
		kc.FailCgroupV1 = ptr.To(false)
	}
	return kc
}

// renderKubeletConfig is kubeletConfig as the YAML file the kubelet reads.
func renderKubeletConfig(c *Config, l Layout, cgroupV1 bool) ([]byte, error) {
	out, err := yaml.Marshal(kubeletConfig(c, l, cgroupV1))
	if err != nil {
		return nil, fmt.Errorf("rendering the kubelet configuration: %w", err)
	}
	return out, nil
}

// kubeletArgs are the kubelet's flags: what a config file cannot say, then K3s's --kubelet-arg.
func kubeletArgs(c *Config, l Layout, configFile string) []string {
	args := []string{
		"--config=" + configFile,
		"--kubeconfig=" + c.KubeletKubeconfig,
		"--root-dir=" + l.Kubelet,
		"--cert-dir=" + filepath.Join(l.Kubelet, "pki"),
		"--hostname-override=" + c.NodeName,
		"--node-ip=" + joinAddrs(c.NodeIPs),
	}
	if c.KubeletBootstrapKubeconfig != "" {
		args = append(args, "--bootstrap-kubeconfig="+c.KubeletBootstrapKubeconfig)
	}
	if c.ExternalCloudProvider {
		args = append(args, "--cloud-provider=external")
	}
	if len(c.NodeLabels) > 0 {
		args = append(args, "--node-labels="+strings.Join(c.NodeLabels, ","))
	}
	if len(c.NodeTaints) > 0 {
		args = append(args, "--register-with-taints="+strings.Join(c.NodeTaints, ","))
	}
	return append(args, extraArgs(c.KubeletArgs)...)
}

// evictionFree is EvictionFreePercent as the kubelet configuration writes it.
var evictionFree = fmt.Sprintf("%d%%", EvictionFreePercent)
