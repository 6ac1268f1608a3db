package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// k3sAgentFlags are the flags of `k3s agent` (K3s's agent CLI reference); a server runs an
// agent, so `k3s server` takes them too.
var k3sAgentFlags = []string{
	"config", "debug", "v", "vmodule", "log", "alsologtostderr",
	"token", "token-file", "server", "data-dir",
	"node-name", "with-node-id", "node-label", "node-taint",
	"image-credential-provider-bin-dir", "image-credential-provider-config",
	"docker", "container-runtime-endpoint", "default-runtime", "image-service-endpoint",
	"disable-default-registry-endpoint", "nonroot-devices", "pause-image", "snapshotter",
	"private-registry", "system-default-registry", "airgap-extra-registry",
	"node-ip", "node-external-ip", "node-internal-dns", "node-external-dns", "resolv-conf",
	"flannel-iface", "flannel-conf", "flannel-cni-conf", "vpn-auth", "vpn-auth-file",
	"kubelet-arg", "kube-proxy-arg", "protect-kernel-defaults",
	"enable-pprof", "rootless", "prefer-bundled-bin", "selinux", "lb-server-port", "disable-apiserver-lb",
	"bind-address",
}

// k3sServerOnlyFlags are the flags `k3s server` has beyond the agent's (K3s's server CLI
// reference, deprecated ones included).
var k3sServerOnlyFlags = []string{
	"https-listen-port", "advertise-address", "advertise-port", "tls-san", "tls-san-security",
	"cluster-cidr", "service-cidr", "service-node-port-range", "cluster-dns", "cluster-domain",
	"flannel-backend", "flannel-ipv6-masq", "flannel-external-ip", "egress-selector-mode", "servicelb-namespace",
	"write-kubeconfig", "write-kubeconfig-mode", "write-kubeconfig-group", "helm-job-image",
	"agent-token", "agent-token-file", "cluster-init", "cluster-reset", "cluster-reset-restore-path",
	"kube-apiserver-arg", "etcd-arg", "kube-controller-manager-arg", "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
	"datastore-endpoint", "datastore-cafile", "datastore-certfile", "datastore-keyfile",
	"etcd-expose-metrics", "etcd-disable-snapshots", "etcd-snapshot-name", "etcd-snapshot-schedule-cron",
	"etcd-snapshot-retention", "etcd-snapshot-dir", "etcd-snapshot-compress",
	"etcd-s3", "etcd-s3-endpoint", "etcd-s3-endpoint-ca", "etcd-s3-skip-ssl-verify", "etcd-s3-access-key",
	"etcd-s3-secret-key", "etcd-s3-bucket", "etcd-s3-region", "etcd-s3-folder", "etcd-s3-proxy",
	"etcd-s3-config-secret", "etcd-s3-insecure", "etcd-s3-timeout",
	"default-local-storage-path", "disable", "disable-scheduler", "disable-cloud-controller",
	"disable-kube-proxy", "disable-network-policy", "disable-helm-controller",
	"disable-apiserver", "disable-controller-manager", "disable-etcd",
	"embedded-registry", "supervisor-metrics", "secrets-encryption", "secrets-encryption-provider",
	"disable-agent", "kine-tls",
	"no-flannel", "no-deploy", "cluster-secret",
}

// k3sShortFlags are K3s's one-letter forms of its long flags.
var k3sShortFlags = map[string]string{
	"c": "config", "l": "log", "t": "token", "s": "server", "d": "data-dir", "i": "node-ip", "o": "write-kubeconfig",
}

// k3sFlags returns the flags of K3s's command ("server" or "agent").
func k3sFlags(command string) []string {
	if command == "agent" {
		return k3sAgentFlags
	}
	return append(slices.Clip(k3sAgentFlags), k3sServerOnlyFlags...)
}

// unimplemented returns K3s's flags of command that fs does not have.
func unimplemented(command string, fs *pflag.FlagSet) map[string]bool {
	out := map[string]bool{}
	for _, name := range k3sFlags(command) {
		if fs.Lookup(name) == nil {
			out[name] = true
		}
	}
	return out
}

// rejectUnimplemented fails on the first K3s flag in args that k3slike does not implement:
// it would otherwise be an unknown flag, and the user would not know that K3s has it.
func rejectUnimplemented(args []string, missing map[string]bool) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		var name string
		switch {
		case strings.HasPrefix(a, "--"):
			name, _, _ = strings.Cut(a[2:], "=")
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			if short, _, _ := strings.Cut(a[1:], "="); len(short) == 1 {
				name = k3sShortFlags[short]
			}
		}
		if missing[name] {
			return fmt.Errorf("--%s: k3s flag not implemented by k3slike", name)
		}
	}
	return nil
}
