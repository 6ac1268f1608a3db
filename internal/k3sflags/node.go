package k3sflags

import (
	"errors"
	"flag"
	"net/netip"
	"path/filepath"

	"github.com/k3snet/k3snet/ccmstub"
)

// RegisterNodeIPs adds --node-ip and --node-external-ip, K3s's addresses of a node.
func RegisterNodeIPs(fs *flag.FlagSet, nodeIP, nodeExternalIP *List) {
	fs.Var(nodeIP, "node-ip", "IPv4/IPv6 addresses to advertise for the node; repeatable, comma lists")
	fs.Var(nodeExternalIP, "node-external-ip", "IPv4/IPv6 external addresses to advertise for the node; repeatable, comma lists")
}

// NodeIPs parses the values of --node-ip and --node-external-ip; problems go to errs.
func NodeIPs(errs *Errors, nodeIP, nodeExternalIP List) (internal, external []netip.Addr) {
	internal, err := ccmstub.ParseIPList(nodeIP...)
	errs.Add("node-ip", err)
	external, err = ccmstub.ParseIPList(nodeExternalIP...)
	errs.Add("node-external-ip", err)
	return internal, external
}

// DataDir makes --data-dir absolute, as the paths derived from it are handed to other
// processes; an empty one goes to errs.
func DataDir(errs *Errors, dir string) string {
	if dir == "" {
		errs.Add("data-dir", errors.New("must not be empty"))
		return ""
	}
	abs, err := filepath.Abs(dir)
	errs.Add("data-dir", err)
	return abs
}
