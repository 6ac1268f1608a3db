package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

func testConfig() *Config {
	return &Config{
		NodeName:               "node-a",
		NodeIPs:                []netip.Addr{netip.MustParseAddr("172.20.0.2"), netip.MustParseAddr("fd00::2")},
		DataDir:                "/tmp/k3s-a",
		BinDir:                 "/bin/k8s",
		NodeBinDir:             "/bin/node",
		ClusterCIDRs:           []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("fd00:42::/56")},
		ServiceCIDRs:           []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")},
		ClusterDNS:             []netip.Addr{netip.MustParseAddr("10.43.0.10")},
		ClusterDomain:          "cluster.local",
		SandboxImage:           "rancher/mirrored-pause:3.6",
		AllowForwardingSysctls: true,
		ExternalCloudProvider:  true,
		NodeLabels:             []string{"pool=a", "tier=web"},
		NodeTaints:             []string{"dedicated=lb:NoSchedule"},
		KubeletArgs:            []string{"cgroup-root=/node-a", "max-pods=50"},
		KubeProxyArgs:          []string{"v=2"},
		CACertFile:             "/tmp/k3s-a/agent/server-ca.crt",
		KubeletKubeconfig:      "/tmp/k3s-a/agent/kubelet.kubeconfig",
		KubeProxyKubeconfig:    "/tmp/k3s-a/agent/kubeproxy.kubeconfig",
	}
}

func TestLayoutUsesK3sPathsOnlyForK3sDataDir(t *testing.T) {
	def := NewLayout(DefaultDataDir)
	assert.Equal(t, "/run/k3s/containerd/containerd.sock", def.ContainerdSocket)
	assert.Equal(t, "/var/lib/kubelet", def.Kubelet)
	assert.Equal(t, "/var/lib/rancher/k3s/agent/containerd", def.Containerd)
	assert.Equal(t, "/var/lib/rancher/k3s/agent/etc/cni/net.d", def.CNIConfDir)
	assert.Equal(t, "/var/lib/rancher/k3s/agent/images", def.Images)

	a, b := NewLayout("/tmp/node-a"), NewLayout("/tmp/node-b")
	assert.NotEqual(t, a.Run, b.Run, "two agents on one machine must not share runtime state")
	assert.True(t, strings.HasPrefix(a.Run, "/run/k3s/"))
	assert.Equal(t, "/tmp/node-a/agent/kubelet", a.Kubelet)
	assert.Equal(t, "/tmp/node-a/agent/pod-logs", a.PodLogs)
	assert.Equal(t, "/tmp/node-a/agent/cni/networks", a.CNIIPAM)
	// A unix socket path has at most 108 bytes, however deep the data dir.
	assert.Less(t, len(NewLayout("/tmp/"+strings.Repeat("deep/", 30)).ContainerdSocket+".ttrpc"), 108)
	assert.Equal(t, a, NewLayout("/tmp/node-a/"), "the same data dir, however spelled, is the same node")
}

func TestValidate(t *testing.T) {
	require.NoError(t, testConfig().Validate())
	c := testConfig()
	c.NodeName, c.DataDir, c.KubeletArgs = "", "relative", []string{"--max-pods=5"}
	err := c.Validate()
	assert.ErrorContains(t, err, "NodeName is required")
	assert.ErrorContains(t, err, "must be an absolute path")
	assert.ErrorContains(t, err, `"--max-pods=5": want name=value, without dashes`)
}

func TestContainerdConfig(t *testing.T) {
	l := NewLayout("/tmp/node-a")
	text := renderContainerdConfig(l, containerdSettings{runc: "/bin/node/bin/runc", cniBinDir: "/bin/node/cni",
		sandboxImage: "docker.io/rancher/mirrored-pause:3.6", restrictOOMScoreAdj: true})
	var cfg map[string]any
	_, err := toml.Decode(text, &cfg)
	require.NoError(t, err, text)
	assert.EqualValues(t, 3, cfg["version"])
	assert.Equal(t, l.Containerd, cfg["root"])
	assert.Equal(t, l.ContainerdState, cfg["state"])
	assert.Equal(t, l.ContainerdSocket, cfg["grpc"].(map[string]any)["address"])
	plugins := cfg["plugins"].(map[string]any)
	images := plugins["io.containerd.cri.v1.images"].(map[string]any)
	assert.Equal(t, "overlayfs", images["snapshotter"])
	assert.Equal(t, "docker.io/rancher/mirrored-pause:3.6", images["pinned_images"].(map[string]any)["sandbox"])
	runtime := plugins["io.containerd.cri.v1.runtime"].(map[string]any)
	assert.Equal(t, true, runtime["restrict_oom_score_adj"])
	assert.Equal(t, true, runtime["netns_mounts_under_state_dir"], "cleanup finds this node's pod namespaces under its state dir")
	runc := runtime["containerd"].(map[string]any)["runtimes"].(map[string]any)["runc"].(map[string]any)
	assert.Equal(t, "io.containerd.runc.v2", runc["runtime_type"])
	assert.Equal(t, "/bin/node/bin/runc", runc["options"].(map[string]any)["BinaryName"])
	assert.Equal(t, false, runc["options"].(map[string]any)["SystemdCgroup"])
	assert.Equal(t, l.Run+"/runc", runc["options"].(map[string]any)["Root"])
	cni := runtime["cni"].(map[string]any)
	assert.Equal(t, []any{"/bin/node/cni"}, cni["bin_dirs"])
	assert.Equal(t, l.CNIConfDir, cni["conf_dir"])
	nri := plugins["io.containerd.nri.v1.nri"].(map[string]any)
	assert.Equal(t, l.Run+"/nri/nri.sock", nri["socket_path"], "two nodes on one machine must not share NRI's socket")
}

func TestKubeletConfig(t *testing.T) {
	c, l := testConfig(), NewLayout("/tmp/k3s-a")
	out, err := renderKubeletConfig(c, l, true)
	require.NoError(t, err)
	var kc kubeletv1beta1.KubeletConfiguration
	require.NoError(t, yaml.UnmarshalStrict(out, &kc), string(out))
	assert.Equal(t, "KubeletConfiguration", kc.Kind)
	assert.Equal(t, "cgroupfs", kc.CgroupDriver)
	assert.Equal(t, "/node-a", kc.CgroupRoot, "--kubelet-arg=cgroup-root is kept in the file, where killall finds it")
	assert.False(t, *kc.FailCgroupV1, "kubelet 1.35+ refuses cgroup v1 unless told")
	assert.False(t, *kc.FailSwapOn)
	assert.Equal(t, []string{"10.43.0.10"}, kc.ClusterDNS)
	assert.Equal(t, "unix://"+l.ContainerdSocket, kc.ContainerRuntimeEndpoint)
	assert.Equal(t, []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}, kc.AllowedUnsafeSysctls,
		"ServiceLB's pods set these; K3s's kubelet allows them")
	assert.Equal(t, c.CACertFile, kc.Authentication.X509.ClientCAFile)
	assert.False(t, *kc.Authentication.Anonymous.Enabled)
	assert.Equal(t, kubeletv1beta1.KubeletAuthorizationModeWebhook, kc.Authorization.Mode)
	assert.Zero(t, kc.ReadOnlyPort)
	assert.False(t, kc.RotateCertificates, "the server's node has a certificate from the CA, nothing to rotate")

	c.AllowForwardingSysctls = false
	c.KubeletBootstrapKubeconfig = "/tmp/k3s-a/agent/kubelet-bootstrap.kubeconfig"
	kc2 := kubeletConfig(c, l, false)
	assert.Empty(t, kc2.AllowedUnsafeSysctls, "with ServiceLB off the kubelet is stock")
	assert.Nil(t, kc2.FailCgroupV1)
	assert.True(t, kc2.RotateCertificates, "a joined kubelet renews its bootstrapped certificate")
}

func TestKubeletArgs(t *testing.T) {
	c, l := testConfig(), NewLayout("/tmp/k3s-a")
	args := kubeletArgs(c, l, "/cfg.yaml")
	assert.Contains(t, args, "--hostname-override=node-a")
	assert.Contains(t, args, "--node-ip=172.20.0.2,fd00::2")
	assert.Contains(t, args, "--cloud-provider=external")
	assert.Contains(t, args, "--node-labels=pool=a,tier=web")
	assert.Contains(t, args, "--register-with-taints=dedicated=lb:NoSchedule")
	assert.Contains(t, args, "--root-dir=/tmp/k3s-a/agent/kubelet")
	assert.NotContains(t, strings.Join(args, " "), "bootstrap")
	assert.Equal(t, []string{"--cgroup-root=/node-a", "--max-pods=50"}, args[len(args)-2:], "--kubelet-arg comes last, so it wins")

	c.ExternalCloudProvider = false
	c.KubeletBootstrapKubeconfig = "/b.kubeconfig"
	args = kubeletArgs(c, l, "/cfg.yaml")
	assert.NotContains(t, args, "--cloud-provider=external")
	assert.Contains(t, args, "--bootstrap-kubeconfig=/b.kubeconfig")
}

func TestKubeProxyConfig(t *testing.T) {
	c := testConfig()
	out, err := renderKubeProxyConfig(c, true)
	require.NoError(t, err)
	var kc kubeproxyv1alpha1.KubeProxyConfiguration
	require.NoError(t, yaml.UnmarshalStrict(out, &kc), string(out))
	assert.Equal(t, kubeproxyv1alpha1.ProxyMode("iptables"), kc.Mode)
	assert.Equal(t, "node-a", kc.HostnameOverride)
	assert.Equal(t, "10.42.0.0/16,fd00:42::/56", kc.ClusterCIDR)
	assert.Equal(t, c.KubeProxyKubeconfig, kc.ClientConnection.Kubeconfig)
	assert.Zero(t, *kc.Conntrack.MaxPerCore, "the host owns nf_conntrack_max, as K3s leaves it")
	assert.Zero(t, *kc.OOMScoreAdj)
	assert.Equal(t, []string{"--config=/p.yaml", "--v=2"}, kubeProxyArgs(c, "/p.yaml"))
}

func TestHostFacts(t *testing.T) {
	assert.True(t, hasFilesystem("nodev\tsysfs\nnodev\toverlay\n\text4\n", "overlay"))
	assert.False(t, hasFilesystem("nodev\tsysfs\n\text4\n", "overlay"))
	caps, ok := capabilities("Name:\tx\nCapEff:\t000001fffeffffff\n")
	require.True(t, ok)
	assert.Zero(t, caps&(1<<capSysResource), "bit 24 clear: CAP_SYS_RESOURCE missing")
	caps, _ = capabilities("CapEff:\t000001ffffffffff\n")
	assert.NotZero(t, caps&(1<<capSysResource))
}

func TestNodeSysctls(t *testing.T) {
	assert.NotContains(t, nodeSysctls([]netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}), "net/ipv6/conf/all/forwarding")
	assert.Equal(t, "1", nodeSysctls([]netip.Prefix{netip.MustParsePrefix("fd00:42::/56")})["net/ipv6/conf/all/forwarding"])
	assert.Equal(t, "1", nodeSysctls(nil)["net/bridge/bridge-nf-call-iptables"])
}
