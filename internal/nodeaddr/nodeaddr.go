// Package nodeaddr decides which IP addresses can be a node's address, for the stub that
// writes node addresses (ccmstub) and ServiceLB, which publishes them.
package nodeaddr

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrUnusable is wrapped by Check's errors.
var ErrUnusable = errors.New("not usable as a node address")

// limitedBroadcast is 255.255.255.255, which reaches every host of the local link.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Check returns nil when a can be a node's address, else an error naming a and the reason,
// wrapping ErrUnusable. It refuses what the kubelet refuses for --node-ip (validateNodeIP):
// unspecified (0.0.0.0, ::), loopback, multicast (link-local multicast included) and
// link-local unicast addresses, and also the limited broadcast address and IPv6 zones, which
// mean nothing to another host. Such an address published for a node sends other hosts to
// themselves, to nowhere, or to every host at once. An IPv4-mapped IPv6 address is judged by
// its IPv4 address.
func Check(a netip.Addr) error {
	var what string
	switch u := a.Unmap(); {
	case !a.IsValid():
		return fmt.Errorf("the zero address: %w", ErrUnusable)
	case a.Zone() != "":
		what = "an address with an IPv6 zone, which is only meaningful on one host"
	case u.IsUnspecified():
		what = "the unspecified address"
	case u.IsLoopback():
		what = "a loopback address"
	case u.IsMulticast():
		what = "a multicast address"
	case u.IsLinkLocalUnicast():
		what = "a link-local address"
	case u == limitedBroadcast:
		what = "the broadcast address"
	default:
		return nil
	}
	return fmt.Errorf("%q is %s: %w", a, what, ErrUnusable)
}
