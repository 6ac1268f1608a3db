package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// helpGroup is a heading of --help and the flags under it.
type helpGroup struct {
	heading string
	flags   []string
}

// helpGroups are the headings of --help, as `k3s server --help` tags its flags ((listener),
// (networking), (agent/node), ...); the last one holds k3slike's own flags. A flag a command
// lacks is skipped, and a flag of no group goes under "Other".
var helpGroups = []helpGroup{
	{"Config", []string{"config"}},
	{"Logging", []string{"debug", "v", "vmodule", "logging-format", "log-flush-frequency",
		"log-text-split-stream", "log-text-info-buffer-size", "log-json-split-stream", "log-json-info-buffer-size"}},
	{"Listener", []string{"bind-address", "https-listen-port", "advertise-address", "tls-san"}},
	{"Data", []string{"data-dir"}},
	{"Networking", []string{"cluster-cidr", "service-cidr", "service-node-port-range", "cluster-dns", "cluster-domain",
		"servicelb-namespace", "servicelb-reserved-host-ports"}},
	{"Client kubeconfig", []string{"write-kubeconfig", "write-kubeconfig-mode"}},
	{"Cluster", []string{"server", "token", "token-file"}},
	{"Customized flags", []string{"kube-controller-manager-arg"}},
	{"Components", []string{"disable", "disable-cloud-controller", "disable-network-policy", "disable-helm-controller",
		"disable-node-ipam", "disable-deploy", "helm-job-image"}},
	{"Agent/Node", []string{"node-name", "node-label", "node-taint"}},
	{"Agent/Runtime", []string{"system-default-registry"}},
	{"Agent/Networking", []string{"node-ip", "node-external-ip", "node-internal-dns", "node-external-dns"}},
	{"Agent/Flags", []string{"kubelet-arg", "kube-proxy-arg"}},
	{"Experimental", []string{"disable-agent", "multi-cluster-cidr"}},
	{"k3slike", []string{"kubeconfig", "bin-dir", "node-bin-dir", "metrics-bind-address", "help"}},
}

// helpUsage is the top of --help for each command.
var helpUsage = map[string]string{
	"server": `k3slike server: an embedded Kubernetes control plane with k3snet's networking add-ons, and
a node of its own, configured as K3s is.

Usage:
  k3slike [server] [flags]   run a server (the default command)
  k3slike agent [flags]      join a node to a server (k3slike agent --help)
  k3slike killall            remove what a stopped node left running
  k3slike --version          print the versions of k3slike, Go and Kubernetes

Flags are also read from the config file (--config) and from K3s's environment variables
[$K3S_...]; the command line wins over the environment, which wins over the config file.
`,
	"agent": `k3slike agent: joins this machine to a k3slike server as a node, as k3s agent does.

Usage:
  k3slike agent --server URL --token TOKEN [flags]

Flags are also read from the config file (--config) and from K3s's environment variables
[$K3S_...]; the command line wins over the environment, which wins over the config file.
`,
}

// writeHelp writes command's help: the usage, then fs's flags under K3s's headings, each with
// its default.
func writeHelp(w io.Writer, command string, fs *pflag.FlagSet) {
	fmt.Fprint(w, helpUsage[command])
	grouped := map[string]bool{}
	section := func(heading string, flags []*pflag.Flag) {
		if len(flags) == 0 {
			return
		}
		part := pflag.NewFlagSet(heading, pflag.ContinueOnError)
		part.SortFlags = false
		for _, f := range flags {
			part.AddFlag(f)
		}
		fmt.Fprintf(w, "\n%s:\n%s", heading, part.FlagUsages())
	}
	for _, g := range helpGroups {
		var flags []*pflag.Flag
		for _, name := range g.flags {
			if f := fs.Lookup(name); f != nil && !f.Hidden {
				flags = append(flags, f)
				grouped[name] = true
			}
		}
		section(g.heading, flags)
	}
	var other []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !grouped[f.Name] && !f.Hidden {
			other = append(other, f)
		}
	})
	slices.SortFunc(other, func(a, b *pflag.Flag) int { return strings.Compare(a.Name, b.Name) })
	section("Other", other)
}
