package clustercidr

import (
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// FuzzClusterCIDRSpec validates any ClusterCIDR spec: either FieldErrors for spec fields, all
// matching ErrInvalidClusterCIDR, or a spec that holds every rule of the API (at least one
// family, each a masked CIDR of its family, perNodeHostBits from 4 to the host bits of each)
// and from which the allocator hands out lowest-first blocks of the right size inside the
// range, never overlapping each other or the service CIDR.
func FuzzClusterCIDRSpec(f *testing.F) {
	sel := []byte(`{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["worker2"]}]}]}`)
	f.Add("10.247.0.0/16", "", int32(8), sel, "kubernetes.io/hostname=worker2", "10.247.0.0/24")
	f.Add("10.42.0.0/16", "fd00:42::/56", int32(8), []byte{}, "", "")
	f.Add("", "fd00::/8", int32(4), []byte{}, "", "fd00::/9")
	f.Add("10.0.0.1/8", "::ffff:10.0.0.0/104", int32(2), []byte(`{"nodeSelectorTerms":[{}]}`), "", "")
	f.Add("10.0.0.0/28", "", int32(4), []byte(`{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]}`), "", "")
	f.Add("0.0.0.0/0", "::/0", int32(32), []byte(`{"nodeSelectorTerms":[{"matchExpressions":[{"key":"n","operator":"Gt","values":["9223372036854775807"]}]}]}`), "n=1", "")
	f.Fuzz(func(t *testing.T, ipv4, ipv6 string, hostBits int32, selector []byte, nodeLabels, serviceCIDR string) {
		spec := ClusterCIDRSpec{IPv4: ipv4, IPv6: ipv6, PerNodeHostBits: hostBits}
		if len(selector) > 0 && json.Unmarshal(selector, &spec.NodeSelector) != nil {
			t.Skip("not a node selector")
		}
		before := spec
		before.NodeSelector = spec.NodeSelector.DeepCopy()
		err := ValidateClusterCIDRSpec(spec)
		if !reflect.DeepEqual(before, spec) {
			t.Fatal("ValidateClusterCIDRSpec modified the spec")
		}
		var services []netip.Prefix
		if p, perr := netip.ParsePrefix(serviceCIDR); perr == nil && !p.Addr().Is4In6() && p.Addr().Zone() == "" {
			services = append(services, p)
		}
		a, aerr := NewAllocator(services)
		if aerr != nil {
			t.Fatal(aerr)
		}
		addErr := a.AddClusterCIDR("cc", spec)
		if (err == nil) != (addErr == nil) {
			t.Fatalf("Validate says %v but AddClusterCIDR says %v", err, addErr)
		}
		if err != nil {
			checkFieldErrors(t, err)
			return
		}

		// The spec holds every rule, read independently of the validator.
		var prefixes []netip.Prefix
		for _, s := range []struct {
			text string
			v6   bool
		}{{ipv4, false}, {ipv6, true}} {
			if s.text == "" {
				continue
			}
			p, perr := netip.ParsePrefix(s.text)
			if perr != nil || p != p.Masked() || p.Addr().Is6() != s.v6 || p.Addr().Is4In6() ||
				hostBits < 4 || int(hostBits) > p.Addr().BitLen()-p.Bits() {
				t.Fatalf("accepted spec %+v breaks a rule at %q", spec, s.text)
			}
			prefixes = append(prefixes, p)
		}
		if len(prefixes) == 0 {
			t.Fatalf("accepted spec %+v has no range", spec)
		}
		if err := a.AddClusterCIDR("cc", spec); err != nil {
			t.Fatalf("adding the same spec again: %v", err)
		}

		labels := map[string]string{}
		for kv := range strings.SplitSeq(nodeLabels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = v
		}
		var held []netip.Prefix
		first := map[string][]netip.Prefix{}
		for _, n := range []Node{{Name: "worker2", Labels: labels}, {Name: "n1", Labels: labels}, {Name: "n2"}} {
			al, err := a.Allocate(n)
			if err != nil {
				if !errors.Is(err, ErrNoCIDRAvailable) {
					t.Fatalf("node %s: %v", n.Name, err)
				}
				continue
			}
			first[n.Name] = al.PodCIDRs
			if len(al.PodCIDRs) != len(prefixes) {
				t.Fatalf("node %s got %v from %v", n.Name, al.PodCIDRs, prefixes)
			}
			for i, p := range al.PodCIDRs {
				r := prefixes[i]
				if p.Bits() != r.Addr().BitLen()-int(hostBits) || !r.Contains(p.Addr()) || p != p.Masked() {
					t.Fatalf("node %s got %s, not a /%d block of %s", n.Name, p, r.Addr().BitLen()-int(hostBits), r)
				}
				for _, o := range append(held, services...) {
					if o.Overlaps(p) {
						t.Fatalf("node %s got %s, which overlaps %s", n.Name, p, o)
					}
				}
				if len(services) == 0 && len(held) == 0 && p.Addr() != r.Addr() {
					t.Fatalf("the first block is %s, not the lowest of %s", p, r)
				}
			}
			held = append(held, al.PodCIDRs...)
		}
		usage, ok := a.Usage("cc")
		if !ok || len(usage) != len(prefixes) {
			t.Fatalf("usage %v of %v", usage, prefixes)
		}
		for _, u := range usage {
			if u.Free > u.Blocks || u.Blocks < math.MaxUint64 && u.Blocks-u.Free < uint64(len(first)) {
				t.Fatalf("usage %+v after %d allocations", u, len(first))
			}
		}
		// A released block is the lowest free one again.
		if want, ok := first["n1"]; ok {
			a.Release("n1")
			al, err := a.Allocate(Node{Name: "n1", Labels: labels})
			if err != nil || !reflect.DeepEqual(al.PodCIDRs, want) {
				t.Fatalf("node n1 got %v, %v after its release, want %v back", al.PodCIDRs, err, want)
			}
		}
	})
}

// checkFieldErrors fails unless err joins only FieldErrors of spec fields.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidClusterCIDR) {
		t.Fatalf("%v does not match ErrInvalidClusterCIDR", err)
	}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if j, ok := e.(interface{ Unwrap() error }); ok && j.Unwrap() != nil {
			walk(j.Unwrap())
			return
		}
		fe, ok := e.(*FieldError)
		if !ok || !strings.HasPrefix(fe.Field, "spec") || fe.Detail == "" {
			t.Fatalf("error %v (%T) is not a FieldError of a spec field", e, e)
		}
	}
	walk(err)
}
