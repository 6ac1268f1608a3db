package forwarder

import (
	"fmt"

	"github.com/coreos/go-iptables/iptables"
)

// hostSystem is the real host: proc files and commands of the namespace the
// forwarder runs in.
type hostSystem struct {
	// procDir is where proc is mounted, /proc.
	procDir string
}

var _ host = hostSystem{}

var _ iptablesRunner = (*iptables.IPTables)(nil)

func (h hostSystem) forwarding(fam Family) (forwarding, error) {
	return readForwarding(h.procDir, fam)
}

func (h hostSystem) backendFacts(fams []Family) (backendFacts, error) {
	return gatherBackendFacts(h.procDir, fams)
}

// iptables returns a go-iptables handle that runs command for fam. go-iptables asks
// the command for its version once here, and passes --wait on every call.
func (h hostSystem) iptables(fam Family, command string) (iptablesRunner, error) {
	proto := iptables.ProtocolIPv4
	if fam == IPv6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Path(command))
	if err != nil {
		return nil, fmt.Errorf("starting %s for %s: %w", command, fam, err)
	}
	return ipt, nil
}
