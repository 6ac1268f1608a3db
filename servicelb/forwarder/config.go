package forwarder

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is a Service port protocol as Kubernetes spells it (DEST_PROTO).
type Protocol string

// The protocols a Service port can have. iptables matches each with -p and the
// match module of the same name, which is what the script does with DEST_PROTO
// verbatim.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// iptables returns the protocol as iptables' -p and -m take it.
func (p Protocol) iptables() string { return strings.ToLower(string(p)) }

// Family is an IP family; the forwarder programs each one on its own.
type Family string

// The IP families, spelled as Kubernetes' ipFamilies spells them.
const (
	IPv4 Family = "IPv4"
	IPv6 Family = "IPv6"
)

// families is the order families are planned, applied and logged in.
func families() []Family { return []Family{IPv4, IPv6} }

// familyOf returns the family of addr; IPv4-mapped IPv6 addresses must be unmapped first.
func familyOf(addr netip.Addr) Family {
	if addr.Is4() {
		return IPv4
	}
	return IPv6
}

// Config is what one LB container forwards: klipper-lb's environment, parsed. Build it with
// ConfigFromEnv, or directly and check it with Validate.
type Config struct {
	// SrcPort is the port the pod receives on (SRC_PORT): the Service port, which the
	// DaemonSet also claims as hostPort.
	SrcPort uint16
	// SrcRanges are the client ranges allowed in (SRC_RANGES), from
	// spec.loadBalancerSourceRanges or the source-ranges annotation. A range of the
	// other family never matches, so each family only accepts its own ranges.
	SrcRanges []netip.Prefix
	// Proto is the port's protocol (DEST_PROTO).
	Proto Protocol
	// DestPort is the port forwarded to (DEST_PORT): the Service port for
	// externalTrafficPolicy Cluster, the node port for Local.
	DestPort uint16
	// DestIPs are the addresses forwarded to (DEST_IPS): the Service's ClusterIPs, or
	// the node's status.hostIPs for externalTrafficPolicy Local. IPv4 and IPv6 may mix.
	DestIPs []netip.Addr
}

// Sentinel errors a Config or an environment variable is rejected with. Check them
// with errors.Is; EnvError says which variable and value.
var (
	// ErrUnset means a required variable is not set at all.
	ErrUnset = errors.New("not set")
	// ErrEmpty means a required value is set but empty, or a list has no entries.
	ErrEmpty = errors.New("empty")
	// ErrBadPort means a port is not a decimal number from 1 to 65535.
	ErrBadPort = errors.New("not a port number from 1 to 65535")
	// ErrBadProtocol means the protocol is not TCP, UDP or SCTP.
	ErrBadProtocol = errors.New("not TCP, UDP or SCTP")
	// ErrBadRange means a source range is not an IP address or CIDR.
	ErrBadRange = errors.New("not an IP address or CIDR")
	// ErrBadDestination means a destination is not an address traffic can be DNATed to.
	ErrBadDestination = errors.New("not a unicast IP address")
)

// Validate reports every problem with c, joined, each naming the environment
// variable the field comes from. ConfigFromEnv's result always validates.
func (c Config) Validate() error {
	var errs []error
	if c.SrcPort == 0 {
		errs = append(errs, &EnvError{Var: EnvSrcPort, Value: "0", Err: ErrBadPort})
	}
	if len(c.SrcRanges) == 0 {
		errs = append(errs, &EnvError{Var: EnvSrcRanges, Err: ErrEmpty})
	}
	for _, p := range c.SrcRanges {
		if !p.IsValid() {
			errs = append(errs, &EnvError{Var: EnvSrcRanges, Value: p.String(), Err: ErrBadRange})
		}
	}
	if _, err := parseProtocol(string(c.Proto)); err != nil {
		errs = append(errs, &EnvError{Var: EnvDestProto, Value: string(c.Proto), Err: err})
	}
	if c.DestPort == 0 {
		errs = append(errs, &EnvError{Var: EnvDestPort, Value: "0", Err: errNoNodePort})
	}
	if len(c.DestIPs) == 0 {
		errs = append(errs, &EnvError{Var: EnvDestIPs, Err: ErrEmpty})
	}
	for _, a := range c.DestIPs {
		if err := checkDestination(a); err != nil {
			errs = append(errs, &EnvError{Var: EnvDestIPs, Value: a.String(), Err: err})
		}
	}
	return errors.Join(errs...)
}

// errNoNodePort explains DEST_PORT=0: K3s renders it for externalTrafficPolicy Local
// when spec.allocateLoadBalancerNodePorts is false, and its pod then forwards nowhere
// without saying so.
var errNoNodePort = fmt.Errorf("%w: port 0 forwards nowhere "+
	"(externalTrafficPolicy Local with allocateLoadBalancerNodePorts false has no node port)", ErrBadPort)

// parseProtocol accepts a protocol in any case, as iptables -p does with the script's
// DEST_PROTO, and returns Kubernetes' spelling.
func parseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToUpper(s)); p {
	case TCP, UDP, SCTP:
		return p, nil
	}
	return "", ErrBadProtocol
}

// checkDestination rejects addresses a DNAT can't usefully point at. A ClusterIP or a
// host IP is always a plain unicast address.
func checkDestination(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return ErrBadDestination
	case a.Zone() != "":
		return fmt.Errorf("%w: has a zone", ErrBadDestination)
	case a.Is4In6():
		return fmt.Errorf("%w: IPv4-mapped IPv6, write it as IPv4", ErrBadDestination)
	case a.IsUnspecified(), a.IsMulticast():
		return ErrBadDestination
	case a.IsLoopback():
		// PREROUTING DNAT to loopback is dropped as a martian unless route_localnet is set.
		return fmt.Errorf("%w: loopback is not reachable from PREROUTING", ErrBadDestination)
	}
	return nil
}

// normalized returns c with its ranges masked, and both lists sorted and without
// duplicates, in new slices. Two spellings of one Service then give one rule set,
// and a duplicate destination does not get twice the connections. Addr.Compare
// puts IPv4 first and orders numerically.
func (c Config) normalized() Config {
	ranges := make([]netip.Prefix, 0, len(c.SrcRanges))
	for _, p := range c.SrcRanges {
		ranges = append(ranges, p.Masked())
	}
	slices.SortFunc(ranges, comparePrefix)
	c.SrcRanges = slices.Compact(ranges)

	dests := slices.Clone(c.DestIPs)
	slices.SortFunc(dests, netip.Addr.Compare)
	c.DestIPs = slices.Compact(dests)
	return c
}

// comparePrefix orders prefixes by address, then by length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// destinations returns the destinations of fam, in Config order.
func (c Config) destinations(fam Family) []netip.Addr {
	var out []netip.Addr
	for _, a := range c.DestIPs {
		if familyOf(a) == fam {
			out = append(out, a)
		}
	}
	return out
}

// sourceRanges returns the source ranges of fam, in Config order.
func (c Config) sourceRanges(fam Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range c.SrcRanges {
		if familyOf(p.Addr()) == fam {
			out = append(out, p)
		}
	}
	return out
}
