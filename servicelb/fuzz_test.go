package servicelb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	netutils "k8s.io/utils/net"

	"github.com/k3snet/k3snet/internal/nodeaddr"
)

// fuzzFamilies are the spec.ipFamilies a flags value picks, with the cluster IP of each.
var fuzzFamilies = [][]corev1.IPFamily{
	{corev1.IPv4Protocol}, {corev1.IPv6Protocol},
	{corev1.IPv4Protocol, corev1.IPv6Protocol}, {corev1.IPv6Protocol, corev1.IPv4Protocol},
}

func fuzzClusterIP(fam corev1.IPFamily) string {
	if fam == corev1.IPv6Protocol {
		return "fd43::10"
	}
	return "10.43.0.10"
}

// fuzzService builds a LoadBalancer Service from fuzzed fields, or reports false when the API
// server would refuse it: the name must be a DNS-1035 label, ports 1-65535 with a known
// protocol and no port/protocol pair twice, node ports at most 65535 (0 when not allocated),
// source ranges CIDRs as the API parses them, the pool label a label value. Annotations are
// not validated by the API server, so they are used as they come.
func fuzzService(name string, uid, ports []byte, specRanges, annRanges, tolerations, pool, prio string, flags uint8) (*corev1.Service, bool) {
	if len(validation.IsDNS1035Label(name)) > 0 || len(validation.IsValidLabelValue(pool)) > 0 {
		return nil, false
	}
	var id [16]byte
	copy(id[:], uid)
	h := fmt.Sprintf("%x", id)
	svc := makeService(withName("default", name),
		withUID(types.UID(h[:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:])))
	fams := fuzzFamilies[flags>>3&3]
	svc.Spec.IPFamilies = fams
	svc.Spec.ClusterIPs = nil
	for _, fam := range fams {
		svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, fuzzClusterIP(fam))
	}
	svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
	if flags&1 != 0 {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	svc.Spec.Ports = nil
	type key struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[key]bool{}
	for ; len(ports) >= 5 && len(svc.Spec.Ports) < 8; ports = ports[5:] {
		proto := []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}[ports[0]%4]
		p := svcPort(proto, int32(binary.BigEndian.Uint16(ports[1:])), int32(binary.BigEndian.Uint16(ports[3:])))
		k := key{p.Port, cmpOr(proto, corev1.ProtocolTCP)}
		if p.Port == 0 || seen[k] {
			return nil, false
		}
		seen[k] = true
		svc.Spec.Ports = append(svc.Spec.Ports, p)
	}
	if len(svc.Spec.Ports) == 0 {
		return nil, false
	}
	if specRanges != "" {
		for r := range strings.SplitSeq(specRanges, ",") {
			if _, _, err := netutils.ParseCIDRSloppy(strings.TrimSpace(r)); err != nil {
				return nil, false
			}
			svc.Spec.LoadBalancerSourceRanges = append(svc.Spec.LoadBalancerSourceRanges, r)
		}
	}
	svc.Annotations = map[string]string{SourceRangesAnnotation: annRanges, testKeys.Tolerations: tolerations}
	if flags&2 != 0 {
		svc.Annotations[testKeys.PriorityClassName] = prio
	}
	if pool != "" {
		withPool(pool)(svc)
	}
	return svc, true
}

func cmpOr(p, def corev1.Protocol) corev1.Protocol {
	if p == "" {
		return def
	}
	return p
}

// FuzzNewDaemonSet renders the DaemonSet of any Service the API server accepts, with any
// annotations: either an *invalidServiceError naming the fields, or an object the API server
// would accept whose SRC_RANGES are canonical CIDRs; rendering twice gives the same object.
func FuzzNewDaemonSet(f *testing.F) {
	tcp80 := []byte{1, 0, 80, 0x75, 0x30}
	f.Add("web", []byte("0123456789abcdef"), tcp80, "", "", "", "", "", uint8(0))
	f.Add("web", []byte{1}, append(slices.Clone(tcp80), 2, 0, 53, 0, 0), "10.0.0.0/8, 192.168.0.1/16", "", "", "blue", "lb-critical", uint8(2|1<<3))
	f.Add(strings.Repeat("a-", 30)+"b", []byte{}, tcp80, "", "::ffff:10.0.0.0/104,2001:db8::/32", `[{"key":"k","operator":"Exists"}]`, "", "", uint8(1|2<<3))
	f.Add("web", []byte{}, tcp80, "", "nope", "- key: k\n  value: \"a b\"", "", "", uint8(0))
	f.Add("web", []byte{}, tcp80, "", "", "", "", "Not A Class", uint8(2))
	f.Fuzz(func(t *testing.T, name string, uid, ports []byte, specRanges, annRanges, tolerations, pool, prio string, flags uint8) {
		svc, ok := fuzzService(name, uid, ports, specRanges, annRanges, tolerations, pool, prio, flags)
		if !ok {
			t.Skip("the API server would refuse this Service")
		}
		p := daemonSetParams{keys: testKeys, namespace: "kube-system", allowList: flags&4 != 0}
		before := svc.DeepCopy()
		ds, err := newDaemonSet(svc, p)
		if !reflect.DeepEqual(before, svc) {
			t.Fatal("newDaemonSet modified the Service")
		}
		if err != nil {
			var invalid *invalidServiceError
			if ds != nil || !errors.As(err, &invalid) || len(invalid.errs) == 0 {
				t.Fatalf("render failed without naming the fields: %v", err)
			}
			return
		}
		again, err := newDaemonSet(svc, p)
		if err != nil || !reflect.DeepEqual(ds, again) {
			t.Fatalf("a second render differs: %v", err)
		}
		if _, err := applyConfiguration(ds); err != nil {
			t.Fatal(err)
		}

		if errs := validation.IsDNS1123Label(ds.Name); len(errs) > 0 {
			t.Fatalf("DaemonSet name %q: %v", ds.Name, errs)
		}
		tmpl := ds.Spec.Template
		for _, m := range []map[string]string{ds.Labels, tmpl.Labels, ds.Spec.Selector.MatchLabels, tmpl.Spec.NodeSelector} {
			checkLabels(t, m)
		}
		for k, v := range ds.Spec.Selector.MatchLabels {
			if tmpl.Labels[k] != v {
				t.Fatalf("the selector %v does not select the pod template %v", ds.Spec.Selector.MatchLabels, tmpl.Labels)
			}
		}
		if pc := tmpl.Spec.PriorityClassName; pc != "" && len(validation.IsDNS1123Subdomain(pc)) > 0 {
			t.Fatalf("priorityClassName %q is not a DNS subdomain", pc)
		}
		if a := tmpl.Spec.Affinity; a != nil {
			for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				for _, e := range term.MatchExpressions {
					checkLabels(t, map[string]string{e.Key: e.Values[0]})
				}
			}
		}
		for _, tol := range tmpl.Spec.Tolerations {
			if tol.Key != "" && len(validation.IsQualifiedName(tol.Key)) > 0 {
				t.Fatalf("toleration key %q", tol.Key)
			}
		}

		if len(tmpl.Spec.Containers) != len(svc.Spec.Ports) {
			t.Fatalf("%d containers for %d ports", len(tmpl.Spec.Containers), len(svc.Spec.Ports))
		}
		names := map[string]bool{}
		for _, c := range tmpl.Spec.Containers {
			if len(validation.IsDNS1123Label(c.Name)) > 0 || names[c.Name] {
				t.Fatalf("container name %q is invalid or repeated", c.Name)
			}
			names[c.Name] = true
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			for _, k := range []string{"SRC_PORT", "DEST_PORT"} {
				if n, err := strconv.Atoi(env[k]); err != nil || n < 1 || n > 65535 {
					t.Fatalf("%s=%q in container %s", k, env[k], c.Name)
				}
			}
			checkSrcRanges(t, env["SRC_RANGES"])
		}
	})
}

// checkLabels fails on a label the API server would refuse.
func checkLabels(t *testing.T, m map[string]string) {
	t.Helper()
	for k, v := range m {
		if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			t.Fatalf("label %q=%q is invalid", k, v)
		}
	}
}

// checkSrcRanges fails unless ranges is a non-empty comma list of masked, unmapped CIDRs in
// address order without repeats, as the LB pod's iptables rules need them.
func checkSrcRanges(t *testing.T, ranges string) {
	t.Helper()
	var prev netip.Prefix
	for i, r := range strings.Split(ranges, ",") {
		p, err := netip.ParsePrefix(r)
		if err != nil || p != p.Masked() || p.Addr().Is4In6() || p.String() != r {
			t.Fatalf("SRC_RANGES=%q: %q is not a canonical CIDR", ranges, r)
		}
		if i > 0 && (p.Addr().Less(prev.Addr()) || p == prev) {
			t.Fatalf("SRC_RANGES=%q is not sorted without repeats", ranges)
		}
		prev = p
	}
}

// fuzzNode builds node name whose status.addresses come from spec, items "i=ADDR" (InternalIP)
// or "e=ADDR" (ExternalIP) separated by ";". A node writes its own status, so anything goes.
func fuzzNode(name, spec string) *corev1.Node {
	n := makeNode(name)
	for item := range strings.SplitSeq(spec, ";") {
		typ, addr, _ := strings.Cut(item, "=")
		switch typ {
		case "i":
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: addr})
		case "e":
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: addr})
		}
	}
	return n
}

// FuzzLoadBalancerIngress publishes nodes with any addresses: every ingress IP is a usable
// address of the Service's families, each once, grouped in spec.ipFamilies order and sorted,
// and each comes from a node running a ready LB pod, by its ExternalIP of that family if it
// has a usable one, else by its InternalIP; one node's bad address never hides another.
func FuzzLoadBalancerIngress(f *testing.F) {
	f.Add("i=10.0.0.1;e=0.0.0.0", "i=10.0.0.2", "i=10.0.0.3;e=203.0.113.3", uint8(0))
	f.Add("i=10.0.0.1;i=fd00::1;e=2001:db8::1", "i=fd00::2;e=127.0.0.1", "i=::ffff:10.0.0.3", uint8(2<<3))
	f.Add("i=10.0.0.10", "i=10.0.0.9", "e=224.0.0.1;e=fe80::1%eth0;i=10.0.0.9", uint8(4))
	f.Fuzz(func(t *testing.T, a, b, c string, flags uint8) {
		svc := makeService()
		fams := fuzzFamilies[flags>>3&3]
		svc.Spec.IPFamilies = fams
		nodes := []*corev1.Node{fuzzNode("a", a), fuzzNode("b", b), fuzzNode("c", c)}
		if flags&4 != 0 {
			nodes[2].DeletionTimestamp = &metav1.Time{}
		}
		var pods []*corev1.Pod
		for i, n := range nodes {
			if flags&(1<<(5+i)) == 0 {
				pods = append(pods, lbPod(svc, n.Name, "10.42.0."+strconv.Itoa(i+1)))
			}
		}
		mode := []corev1.LoadBalancerIPMode{"", corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy}[flags%3]
		ing := loadBalancerIngress(svc, pods, nodeMap(nodes...), nil, mode, testKeys)

		// want: what each serving node publishes, by the documented rule.
		want := map[netip.Addr]bool{}
		for _, pod := range pods {
			n := nodeMap(nodes...)[pod.Spec.NodeName]
			if n.DeletionTimestamp != nil {
				continue
			}
			for _, fam := range fams {
				var ext, in []netip.Addr
				for _, na := range n.Status.Addresses {
					ip, err := netip.ParseAddr(na.Address)
					if err != nil || nodeaddr.Check(ip) != nil || addrFamily(ip) != fam {
						continue
					}
					if na.Type == corev1.NodeExternalIP {
						ext = append(ext, ip.Unmap())
					} else {
						in = append(in, ip.Unmap())
					}
				}
				if len(ext) == 0 {
					ext = in
				}
				for _, ip := range ext {
					want[ip] = true
				}
			}
		}
		if len(ing) != len(want) {
			t.Fatalf("ingress %v, want the addresses %v", ingressAddresses(ing), want)
		}
		famIndex := 0
		var prev netip.Addr
		for i, e := range ing {
			ip, err := netip.ParseAddr(e.IP)
			if err != nil || ip.String() != e.IP || !want[ip] || e.IPMode == nil || e.Hostname != "" {
				t.Fatalf("ingress entry %+v is not one of %v", e, want)
			}
			for famIndex < len(fams) && addrFamily(ip) != fams[famIndex] {
				famIndex++
			}
			if famIndex == len(fams) {
				t.Fatalf("ingress %v is not grouped in family order %v", ingressAddresses(ing), fams)
			}
			if i > 0 && addrFamily(prev) == addrFamily(ip) && !prev.Less(ip) {
				t.Fatalf("ingress %v is not sorted without repeats", ingressAddresses(ing))
			}
			prev = ip
		}
	})
}
