package main

import (
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/compose"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// flagCase is one command line of a table: what it parses to, or the errors it gives.
type flagCase[C any] struct {
	name    string
	args    []string
	env     map[string]string
	check   func(t *testing.T, cfg C)
	wantErr []string
}

func runFlagCases[C any](t *testing.T, parse func([]string, func(string) string, io.Writer) (C, error), cases []flagCase[C]) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(tt.args, env(tt.env), io.Discard)
			if len(tt.wantErr) > 0 {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestParseControllersFlags(t *testing.T) {
	runFlagCases(t, parseControllersFlags, []flagCase[*controllersConfig]{
		{
			name: "defaults are K3s's, with k3snet's data dir and the pod's address for metrics",
			check: func(t *testing.T, cfg *controllersConfig) {
				s := cfg.cluster
				assert.Equal(t, "/var/lib/k3snet", s.DataDir)
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}, s.ClusterCIDRs)
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, s.ServiceCIDRs)
				assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.43.0.10")}, s.ClusterDNS)
				assert.Equal(t, "cluster.local", s.ClusterDomain)
				assert.Equal(t, "kube-system", s.ServiceLBNamespace)
				assert.False(t, s.DisableNodeIPAM || s.DisableDeploy || s.DisableHelmController || s.DisableCloudController)
				assert.Equal(t, "kube-system", cfg.leaseNamespace, "outside a pod the Leases go to kube-system")
				assert.Equal(t, ":10258", cfg.metricsBindAddress)
				assert.False(t, cfg.self.IsSet())
			},
		},
		{
			name: "in a pod the Leases go beside it, named after it, and its ServiceAccount is known",
			env:  map[string]string{"POD_NAMESPACE": "k3snet-system", "SERVICE_ACCOUNT": "k3snet-controllers", "POD_NAME": "k3snet-controllers-7d9f-x2"},
			check: func(t *testing.T, cfg *controllersConfig) {
				assert.Equal(t, "k3snet-system", cfg.leaseNamespace)
				assert.Equal(t, "k3snet-controllers-7d9f-x2", cfg.podName)
				assert.Equal(t, compose.ServiceAccountRef{Namespace: "k3snet-system", Name: "k3snet-controllers"}, cfg.self)
			},
		},
		{
			name: "--lease-namespace wins over the pod's namespace",
			args: []string{"--lease-namespace=leases"},
			env:  map[string]string{"POD_NAMESPACE": "k3snet-system"},
			check: func(t *testing.T, cfg *controllersConfig) {
				assert.Equal(t, "leases", cfg.leaseNamespace)
			},
		},
		{
			name: "K3s's switches and ours reach the controllers' settings",
			args: []string{"--disable=servicelb,traefik", "--disable-cloud-controller", "--disable-node-ipam", "--disable-deploy",
				"--disable-helm-controller", "--multi-cluster-cidr", "--cluster-cidr=10.42.0.0/16,fd00:42::/56",
				"--service-cidr=fd00:43::/112,10.43.0.0/16", "--cluster-domain=example.org", "--servicelb-namespace=lb",
				"--system-default-registry=registry.example.org", "--data-dir=relative", "--kubeconfig=/k",
				"--servicelb-reserved-host-ports=10250,6443", "--servicelb-reserved-host-ports=2379",
				"--helm-job-image=registry.example.org/helm:1"},
			check: func(t *testing.T, cfg *controllersConfig) {
				s := cfg.cluster
				assert.Equal(t, []string{"servicelb", "traefik"}, s.Disable)
				assert.True(t, s.Disabled("servicelb"))
				assert.True(t, s.DisableCloudController && s.DisableNodeIPAM && s.DisableDeploy && s.DisableHelmController && s.MultiClusterCIDR)
				assert.Len(t, s.ClusterCIDRs, 2)
				assert.Equal(t, "fd00:43::a", s.ClusterDNS[0].String(), "cluster DNS defaults into the first service CIDR")
				assert.Equal(t, "example.org", s.ClusterDomain)
				assert.Equal(t, "lb", s.ServiceLBNamespace)
				assert.Equal(t, "registry.example.org", s.SystemDefaultRegistry)
				assert.Equal(t, "registry.example.org/helm:1", s.HelmJobImage)
				assert.Equal(t, []int32{10250, 6443, 2379}, s.ServiceLBReservedHostPorts)
				assert.True(t, filepath.IsAbs(s.DataDir), "the data dir is made absolute: %s", s.DataDir)
				assert.Equal(t, "/k", cfg.kubeconfig)
			},
		},
		{name: "a bad cluster CIDR names the flag", args: []string{"--cluster-cidr=10.42.0.0/33"}, wantErr: []string{"invalid --cluster-cidr"}},
		{name: "a reserved port that is not one names the flag", args: []string{"--servicelb-reserved-host-ports=10250,0,http"},
			wantErr: []string{"invalid --servicelb-reserved-host-ports", `"0" is not a port`, `"http" is not a port`}},
		{name: "a bad helm job image names the flag", args: []string{"--helm-job-image=a b"}, wantErr: []string{"invalid --helm-job-image"}},
		{name: "a bad lease namespace names the flag", args: []string{"--lease-namespace=Kube_System"}, wantErr: []string{"invalid --lease-namespace"}},
		{name: "a bad metrics address names the flag", args: []string{"--metrics-bind-address=10258"}, wantErr: []string{"invalid --metrics-bind-address"}},
		{name: "an empty data dir names the flag", args: []string{"--data-dir="}, wantErr: []string{"invalid --data-dir"}},
		{name: "every bad flag is reported at once", args: []string{"--service-cidr=x", "--cluster-domain=Not_A_Domain"},
			wantErr: []string{"invalid --service-cidr", "invalid --cluster-domain"}},
		{name: "node flags are not controllers flags", args: []string{"--node-name=n"}, wantErr: []string{"flag provided but not defined: -node-name"}},
		{name: "a stray argument is an error", args: []string{"node"}, wantErr: []string{`unexpected argument "node"`}},
	})
}

func TestParseNodeFlags(t *testing.T) {
	downwardAPI := map[string]string{"NODE_NAME": "worker-1", "NODE_IP": "10.0.0.5", "POD_NAMESPACE": "k3snet-system", "SERVICE_ACCOUNT": "k3snet-node"}
	runFlagCases(t, parseNodeFlags, []flagCase[*nodeConfig]{
		{
			name: "the downward API gives the node, its address and the pod's ServiceAccount",
			env:  downwardAPI,
			check: func(t *testing.T, cfg *nodeConfig) {
				assert.Equal(t, "worker-1", cfg.nodeName)
				assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.5")}, cfg.nodeIPs)
				assert.Empty(t, cfg.nodeExternalIPs)
				assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, cfg.serviceCIDRs)
				assert.Equal(t, ":10266", cfg.metricsBindAddress)
				assert.Equal(t, compose.ServiceAccountRef{Namespace: "k3snet-system", Name: "k3snet-node"}, cfg.self)
				assert.False(t, cfg.disableNetworkPolicy || cfg.disableCloudController)
			},
		},
		{
			name: "flags win over the environment; NODE_IP may be a dual-stack list",
			args: []string{"--node-name=worker-2", "--node-external-ip=203.0.113.7", "--service-cidr=10.96.0.0/12", "--disable-network-policy"},
			env:  map[string]string{"NODE_NAME": "worker-1", "NODE_IP": "10.0.0.5,fd00::5"},
			check: func(t *testing.T, cfg *nodeConfig) {
				assert.Equal(t, "worker-2", cfg.nodeName)
				assert.Equal(t, "[10.0.0.5 fd00::5]", fmt.Sprint(cfg.nodeIPs))
				assert.Equal(t, "[203.0.113.7]", fmt.Sprint(cfg.nodeExternalIPs))
				assert.Equal(t, "10.96.0.0/12", cfg.serviceCIDRs[0].String())
				assert.True(t, cfg.disableNetworkPolicy)
			},
		},
		{
			name: "--node-ip replaces NODE_IP",
			args: []string{"--node-ip=10.0.0.9"},
			env:  downwardAPI,
			check: func(t *testing.T, cfg *nodeConfig) {
				assert.Equal(t, "[10.0.0.9]", fmt.Sprint(cfg.nodeIPs))
			},
		},
		{
			name: "with the cloud controller off no address is needed: the annotations are removed",
			args: []string{"--disable-cloud-controller"},
			env:  map[string]string{"NODE_NAME": "worker-1"},
			check: func(t *testing.T, cfg *nodeConfig) {
				assert.True(t, cfg.disableCloudController)
				assert.Empty(t, cfg.nodeIPs)
			},
		},
		{name: "the node name is required", env: map[string]string{"NODE_IP": "10.0.0.5"}, wantErr: []string{"invalid --node-name: required (or NODE_NAME)"}},
		{name: "the node address is required", env: map[string]string{"NODE_NAME": "n"}, wantErr: []string{"invalid --node-ip: required (or NODE_IP)"}},
		{name: "a bad node name names the flag", args: []string{"--node-name=Not_A_Node"}, env: downwardAPI, wantErr: []string{"invalid --node-name"}},
		{name: "a bad NODE_IP names the flag", env: map[string]string{"NODE_NAME": "n", "NODE_IP": "10.0.0.300"}, wantErr: []string{"invalid --node-ip"}},
		{name: "a bad service CIDR names the flag", args: []string{"--service-cidr=10.43.0.1/16"}, env: downwardAPI, wantErr: []string{"invalid --service-cidr", "did you mean 10.43.0.0/16"}},
		{name: "a bad metrics address names the flag", args: []string{"--metrics-bind-address=:port"}, env: downwardAPI, wantErr: []string{"invalid --metrics-bind-address"}},
		{name: "controllers flags are not node flags", args: []string{"--disable=servicelb"}, env: downwardAPI, wantErr: []string{"flag provided but not defined: -disable"}},
	})
}

func TestParseUninstallFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *uninstallConfig
		wantErr string
	}{
		{name: "defaults are the manifests' namespaces", want: &uninstallConfig{namespace: "k3snet-system", serviceLBNamespace: "kube-system"}},
		{name: "both namespaces and the kubeconfig are flags", args: []string{"--kubeconfig=/k", "--namespace=net", "--servicelb-namespace=lb"},
			want: &uninstallConfig{kubeconfig: "/k", namespace: "net", serviceLBNamespace: "lb"}},
		{name: "a bad namespace names the flag", args: []string{"--namespace=Net"}, wantErr: "invalid --namespace"},
		{name: "a bad servicelb namespace names the flag", args: []string{"--servicelb-namespace=-lb"}, wantErr: "invalid --servicelb-namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseUninstallFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}
