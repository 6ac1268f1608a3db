package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// ConflistName is the file the CNI configuration is written to in the CNI conf dir, K3s's
// name for its flannel network's configuration.
const ConflistName = "10-flannel.conflist"

// BridgeName is the pods' bridge on every node, flannel's name for it.
const BridgeName = "cni0"

// conflist is a CNI network configuration list.
type conflist struct {
	CNIVersion string   `json:"cniVersion"`
	Name       string   `json:"name"`
	Plugins    []plugin `json:"plugins"`
}

// plugin is one plugin of a conflist; only the fields we set.
type plugin struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge,omitempty"`
	IsGateway    bool            `json:"isGateway,omitempty"`
	IPMasq       *bool           `json:"ipMasq,omitempty"`
	HairpinMode  bool            `json:"hairpinMode,omitempty"`
	ForceAddress bool            `json:"forceAddress,omitempty"`
	IPAM         *ipam           `json:"ipam,omitempty"`
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	SNAT         *bool           `json:"snat,omitempty"`
}

type ipam struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes"`
	DataDir string        `json:"dataDir,omitempty"`
}

type ipamRange struct {
	Subnet string `json:"subnet"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

// Conflist renders the CNI configuration of a node whose pod CIDRs are podCIDRs (one per
// family): the bridge plugin on cni0 as the pods' gateway, with hairpin mode so a pod reaches
// itself through its Service, addresses from host-local (its state in ipamDataDir; empty is
// host-local's default), no masquerading of its own (the node's rules masquerade only traffic
// that leaves the cluster, so pods see each other's real addresses), and portmap for hostPorts
// (ServiceLB's pods).
func Conflist(podCIDRs []netip.Prefix, ipamDataDir string) ([]byte, error) {
	if len(podCIDRs) == 0 {
		return nil, errors.New("podnet: the node has no pod CIDR yet")
	}
	in := &ipam{Type: "host-local", DataDir: ipamDataDir}
	for _, p := range podCIDRs {
		if !p.IsValid() || p != p.Masked() {
			return nil, fmt.Errorf("podnet: pod CIDR %v is not a network address", p)
		}
		in.Ranges = append(in.Ranges, []ipamRange{{Subnet: p.String()}})
		def := "0.0.0.0/0"
		if p.Addr().Is6() {
			def = "::/0"
		}
		in.Routes = append(in.Routes, ipamRoute{Dst: def})
	}
	f := false
	t := true
	out, err := json.MarshalIndent(conflist{
		CNIVersion: "1.0.0",
		Name:       "cbr0",
		Plugins: []plugin{
			{Type: "bridge", Bridge: BridgeName, IsGateway: true, IPMasq: &f, HairpinMode: true, ForceAddress: true, IPAM: in},
			{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}, SNAT: &t},
		},
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("podnet: rendering the CNI configuration: %w", err)
	}
	return append(out, '\n'), nil
}
