package podnet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// routeProtocol marks the routes podnet installs (`ip route ... proto 97`); it reads back and
// removes only routes carrying it, never a route someone else made.
const routeProtocol = 97

// nodeInfo is what routing needs of a Node.
type nodeInfo struct {
	name        string
	podCIDRs    []netip.Prefix
	internalIPs []netip.Addr
}

// route sends dst through gateway.
type route struct {
	dst     netip.Prefix
	gateway netip.Addr
}

func (r route) String() string { return r.dst.String() + " via " + r.gateway.String() }

// desiredRoutes routes every other node's pod CIDRs through that node's internal address of
// the same family, as flannel's host-gw backend does. A CIDR without an address of its family
// gets no route. Sorted by destination.
func desiredRoutes(self string, nodes []nodeInfo) []route {
	var out []route
	for _, n := range nodes {
		if n.name == self {
			continue
		}
		for _, cidr := range n.podCIDRs {
			i := slices.IndexFunc(n.internalIPs, func(ip netip.Addr) bool { return ip.Is4() == cidr.Addr().Is4() })
			if i >= 0 {
				out = append(out, route{dst: cidr, gateway: n.internalIPs[i]})
			}
		}
	}
	slices.SortFunc(out, func(a, b route) int {
		return cmp.Or(a.dst.Addr().Compare(b.dst.Addr()), cmp.Compare(a.dst.Bits(), b.dst.Bits()), a.gateway.Compare(b.gateway))
	})
	return out
}

// routeDiff returns what to add (or replace) and what to delete to go from have to want.
func routeDiff(have, want []route) (add, del []route) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !slices.ContainsFunc(want, func(w route) bool { return w.dst == h.dst }) {
			del = append(del, h)
		}
	}
	return add, del
}

// ipRoutes reads and writes this network namespace's routes with iproute2.
type ipRoutes struct{}

// list returns the routes of one family that carry routeProtocol.
func (ipRoutes) list(ctx context.Context, ipv6 bool) ([]route, error) {
	out, err := ip(ctx, family(ipv6), "-j", "route", "show", "proto", strconv.Itoa(routeProtocol))
	if err != nil {
		return nil, err
	}
	return parseRoutes(out)
}

// parseRoutes reads `ip -j route show` output.
func parseRoutes(out []byte) ([]route, error) {
	var rows []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("podnet: reading ip route output: %w", err)
	}
	var routes []route
	for _, r := range rows {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			// A host route is printed without its length.
			addr, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				continue
			}
			dst = netip.PrefixFrom(addr, addr.BitLen())
		}
		gw, _ := netip.ParseAddr(r.Gateway)
		routes = append(routes, route{dst: dst, gateway: gw})
	}
	return routes, nil
}

func (ipRoutes) replace(ctx context.Context, r route) error {
	_, err := ip(ctx, family(r.dst.Addr().Is6()), "route", "replace", r.dst.String(), "via", r.gateway.String(),
		"proto", strconv.Itoa(routeProtocol))
	return err
}

func (ipRoutes) delete(ctx context.Context, r route) error {
	_, err := ip(ctx, family(r.dst.Addr().Is6()), "route", "del", r.dst.String(), "proto", strconv.Itoa(routeProtocol))
	return err
}

// syncRoutes makes this namespace's routes of protocol routeProtocol equal want, and names
// every route it could not install (a gateway that is not on a directly connected network).
func syncRoutes(ctx context.Context, want []route) error {
	var r ipRoutes
	var errs []error
	for _, ipv6 := range []bool{false, true} {
		have, err := r.list(ctx, ipv6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var wantFamily []route
		for _, w := range want {
			if w.dst.Addr().Is6() == ipv6 {
				wantFamily = append(wantFamily, w)
			}
		}
		add, del := routeDiff(have, wantFamily)
		for _, d := range del {
			if err := r.delete(ctx, d); err != nil {
				errs = append(errs, fmt.Errorf("removing route %s: %w", d, err))
			}
		}
		for _, a := range add {
			if err := r.replace(ctx, a); err != nil {
				errs = append(errs, fmt.Errorf("routing %s (the node's address must be on a network this node is attached to): %w", a, err))
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveRoutes deletes every route podnet installed in this network namespace.
func RemoveRoutes(ctx context.Context) error {
	return syncRoutes(ctx, nil)
}

func family(ipv6 bool) string {
	if ipv6 {
		return "-6"
	}
	return "-4"
}

// ip runs iproute2 and returns its output, or an error carrying what it printed.
func ip(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(exit.Stderr)))
		}
		return nil, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}
