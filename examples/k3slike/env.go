package main

import "github.com/spf13/pflag"

// envFlag is an environment variable K3s reads for one of its flags.
type envFlag struct{ env, flag string }

// k3sEnv are the environment variables of `k3s server` and `k3s agent` (the [$K3S_...] of
// their --help), in the order K3s lists them.
var k3sEnv = []envFlag{
	{"K3S_CONFIG_FILE", "config"},
	{"K3S_DEBUG", "debug"},
	{"K3S_DATA_DIR", "data-dir"},
	{"K3S_KUBECONFIG_OUTPUT", "write-kubeconfig"},
	{"K3S_KUBECONFIG_MODE", "write-kubeconfig-mode"},
	{"K3S_KUBECONFIG_GROUP", "write-kubeconfig-group"},
	{"K3S_TOKEN", "token"},
	{"K3S_TOKEN_FILE", "token-file"},
	{"K3S_AGENT_TOKEN", "agent-token"},
	{"K3S_AGENT_TOKEN_FILE", "agent-token-file"},
	{"K3S_URL", "server"},
	{"K3S_CLUSTER_INIT", "cluster-init"},
	{"K3S_CLUSTER_RESET", "cluster-reset"},
	{"K3S_DATASTORE_ENDPOINT", "datastore-endpoint"},
	{"K3S_DATASTORE_CAFILE", "datastore-cafile"},
	{"K3S_DATASTORE_CERTFILE", "datastore-certfile"},
	{"K3S_DATASTORE_KEYFILE", "datastore-keyfile"},
	{"K3S_NODE_NAME", "node-name"},
	{"K3S_SYSTEM_DEFAULT_REGISTRY", "system-default-registry"},
	{"K3S_RESOLV_CONF", "resolv-conf"},
	{"K3S_VPN_AUTH", "vpn-auth"},
	{"K3S_VPN_AUTH_FILE", "vpn-auth-file"},
	{"K3S_SELINUX", "selinux"},
	{"K3S_LB_SERVER_PORT", "lb-server-port"},
}

// envHelp appends each flag's environment variable to its help, as K3s's --help shows it.
func envHelp(fs *pflag.FlagSet) {
	for _, e := range k3sEnv {
		if f := fs.Lookup(e.flag); f != nil {
			f.Usage += " [$" + e.env + "]"
		}
	}
}
