package netpol

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// randomCluster is a small cluster a seeded random sequence of events changes, the way
// informers do: every change is a new object, never an edit of one in the input.
type randomCluster struct {
	r          *rand.Rand
	namespaces []*corev1.Namespace
	pods       []*corev1.Pod
	policies   []*networkingv1.NetworkPolicy
	// serial names new objects and makes their addresses unique.
	serial int
}

// Value pools: small, so that selectors often match and sets are often shared.
var (
	randNamespaces = []string{"n0", "n1", "n2", "n3"}
	randApps       = []string{"a0", "a1", "a2"}
	randTiers      = []string{"web", "db"}
	randTeams      = []string{"red", "blue"}
	randNodes      = []string{nodeName, "node-2"}
)

func (rc *randomCluster) pick(values []string) string { return values[rc.r.IntN(len(values))] }

// newNamespace builds namespace name with random labels.
func (rc *randomCluster) newNamespace(name string) *corev1.Namespace {
	ns := makeNamespace(name, withNamespaceLabels("team", rc.pick(randTeams)))
	if rc.r.IntN(2) == 0 {
		ns.Labels["env"] = "prod"
	}
	return ns
}

// newPod builds a pod with random labels, node, addresses and named ports. A few are
// finished, host-network or without an address, which no policy selects.
func (rc *randomCluster) newPod(ns, name string) *corev1.Pod {
	rc.serial++
	v4, v6 := fmt.Sprintf("10.42.%d.%d", rc.serial/200, rc.serial%200+2), fmt.Sprintf("fd42::%x", rc.serial+2)
	if len(rc.pods) > 0 && rc.r.IntN(10) == 0 {
		// An address still held by another pod, as a finished pod's may be.
		other := rc.pods[rc.r.IntN(len(rc.pods))]
		for _, ip := range other.Status.PodIPs {
			if netip.MustParseAddr(ip.IP).Is4() {
				v4 = ip.IP
			} else {
				v6 = ip.IP
			}
		}
	}
	var ports []corev1.ContainerPort
	for _, p := range []corev1.ContainerPort{containerPort("http", "", 8080), containerPort("http", "", 8081), containerPort("dns", corev1.ProtocolUDP, 53)} {
		if rc.r.IntN(2) == 0 {
			ports = append(ports, p)
		}
	}
	pod := makePod(ns, name, onNode(rc.pick(randNodes)), withLabels("app", rc.pick(randApps), "tier", rc.pick(randTiers)),
		withIPs(v4, v6), servingOnly(ports...))
	switch rc.r.IntN(12) {
	case 0:
		withPhase(corev1.PodSucceeded)(pod)
	case 1:
		withIPs()(pod)
	case 2:
		withIPs(v6)(pod)
	}
	return pod
}

// newSelector returns a random selector, sometimes empty (all) and sometimes an expression.
func (rc *randomCluster) newSelector(key string, values []string) *metav1.LabelSelector {
	switch rc.r.IntN(4) {
	case 0:
		return labelsSel()
	case 1:
		return exprSel(key, metav1.LabelSelectorOpIn, rc.pick(values), rc.pick(values))
	default:
		return labelsSel(key, rc.pick(values))
	}
}

// newPeer returns a random peer of every kind the API has.
func (rc *randomCluster) newPeer() networkingv1.NetworkPolicyPeer {
	switch rc.r.IntN(5) {
	case 0:
		return podPeer(rc.newSelector("app", randApps))
	case 1:
		return nsPeer(rc.newSelector("team", randTeams))
	case 2:
		return podNSPeer(rc.newSelector("tier", randTiers), rc.newSelector("env", []string{"prod"}))
	case 3:
		return cidrPeer("10.42.0.0/16", "10.42.0.0/24")
	default:
		return cidrPeer("fd42::/64", "fd42::/120")
	}
}

// newPort returns a random port entry: numeric, range, protocol only or named.
func (rc *randomCluster) newPort() networkingv1.NetworkPolicyPort {
	switch rc.r.IntN(4) {
	case 0:
		return port(80)
	case 1:
		return portRange(corev1.ProtocolTCP, 8000, 8100)
	case 2:
		return protoNamedPort(corev1.ProtocolUDP, "dns")
	default:
		return namedPort("http")
	}
}

// newPolicy builds policy ns/name with random targets, types, rules, peers and ports.
func (rc *randomCluster) newPolicy(ns, name string) *networkingv1.NetworkPolicy {
	np := makePolicy(ns, name, targets(rc.newSelector("app", randApps)))
	var ports []networkingv1.NetworkPolicyPort
	for range rc.r.IntN(3) {
		ports = append(ports, rc.newPort())
	}
	var ps []networkingv1.NetworkPolicyPeer
	for range rc.r.IntN(3) {
		ps = append(ps, rc.newPeer())
	}
	ingressRules(from(ps, ports...))(np)
	if rc.r.IntN(2) == 0 {
		policyTypes(typeIngress, typeEgress)(np)
		egressRules(to(peers(rc.newPeer()), rc.newPort()))(np)
	}
	return np
}

// replace swaps the element at i for a new one, as an informer update does.
func replace[T any](list []T, i int, obj T) { list[i] = obj }

// step applies one random event and names it.
func (rc *randomCluster) step() string {
	switch k := rc.r.IntN(10); {
	case k < 2 || len(rc.pods) == 0:
		pod := rc.newPod(rc.pick(randNamespaces), fmt.Sprintf("p%d", rc.serial))
		rc.pods = append(rc.pods, pod)
		return "add pod " + pod.Name
	case k == 2:
		i := rc.r.IntN(len(rc.pods))
		name := rc.pods[i].Name
		rc.pods = slices.Delete(rc.pods, i, i+1)
		return "delete pod " + name
	case k == 3:
		i := rc.r.IntN(len(rc.pods))
		pod := rc.pods[i].DeepCopy()
		pod.Labels["app"] = rc.pick(randApps)
		replace(rc.pods, i, pod)
		return "relabel pod " + pod.Name
	case k == 4:
		i := rc.r.IntN(len(rc.pods))
		pod := rc.pods[i].DeepCopy()
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady})
		if rc.r.IntN(3) == 0 {
			pod.Status.Phase = corev1.PodFailed
		}
		replace(rc.pods, i, pod)
		return "status of pod " + pod.Name
	case k == 5:
		i := rc.r.IntN(len(rc.namespaces))
		replace(rc.namespaces, i, rc.newNamespace(rc.namespaces[i].Name))
		return "relabel namespace " + rc.namespaces[i].Name
	case k == 6 && len(rc.namespaces) > 2:
		i := rc.r.IntN(len(rc.namespaces))
		name := rc.namespaces[i].Name
		rc.namespaces = slices.Delete(rc.namespaces, i, i+1)
		return "delete namespace " + name
	case k == 6:
		for _, name := range randNamespaces {
			if !slices.ContainsFunc(rc.namespaces, func(ns *corev1.Namespace) bool { return ns.Name == name }) {
				rc.namespaces = append(rc.namespaces, rc.newNamespace(name))
				return "add namespace " + name
			}
		}
		return "no namespace to add"
	case k == 7 || len(rc.policies) == 0:
		np := rc.newPolicy(rc.pick(randNamespaces), fmt.Sprintf("pol%d", rc.serial))
		rc.serial++
		rc.policies = append(rc.policies, np)
		return "add policy " + np.Name
	case k == 8:
		i := rc.r.IntN(len(rc.policies))
		replace(rc.policies, i, rc.newPolicy(rc.policies[i].Namespace, rc.policies[i].Name))
		return "update policy " + rc.policies[i].Name
	default:
		i := rc.r.IntN(len(rc.policies))
		name := rc.policies[i].Name
		rc.policies = slices.Delete(rc.policies, i, i+1)
		return "delete policy " + name
	}
}

// input returns the cluster as node-1's compile input, in a shuffled order, as a lister
// returns it.
func (rc *randomCluster) input(families []corev1.IPFamily) Input {
	in := Input{NodeName: nodeName, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("fd42::/64")},
		Families: families, Pods: slices.Clone(rc.pods), Namespaces: slices.Clone(rc.namespaces), Policies: slices.Clone(rc.policies)}
	rc.r.Shuffle(len(in.Pods), func(i, j int) { in.Pods[i], in.Pods[j] = in.Pods[j], in.Pods[i] })
	rc.r.Shuffle(len(in.Policies), func(i, j int) { in.Policies[i], in.Policies[j] = in.Policies[j], in.Policies[i] })
	return in
}

// TestIncrementalCompileEqualsFullCompile runs seeded random event sequences (pods, namespaces
// and policies added, changed and deleted, status-only updates, families switched, one event
// or a burst of them per compile) through one
// compileCache and checks after every event that its State and problems equal a compile from
// nothing. A failure names the seed and the events so far.
func TestIncrementalCompileEqualsFullCompile(t *testing.T) {
	dual := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	v4 := []corev1.IPFamily{corev1.IPv4Protocol}
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rc := &randomCluster{r: rand.New(rand.NewPCG(seed, 4))}
			for _, name := range randNamespaces[:3] {
				rc.namespaces = append(rc.namespaces, rc.newNamespace(name))
			}
			for i := range 20 {
				rc.pods = append(rc.pods, rc.newPod(rc.pick(randNamespaces), fmt.Sprintf("init%d", i)))
			}
			cache := newCompileCache()
			var events []string
			for step := range 150 {
				// Mostly one event per compile; sometimes a burst the runner coalesced, some
				// larger than what the cache edits one by one (maxIncrementalMoves).
				burst := 1
				switch rc.r.IntN(60) {
				case 0, 1:
					burst = 5
				case 2:
					burst = maxIncrementalMoves + 8
				}
				for range burst {
					events = append(events, rc.step())
				}
				families := dual
				if step%40 == 39 {
					families = v4 // the IPv6 cache is dropped, then rebuilt
				}
				in := rc.input(families)
				got, gotErr := cache.compile(in)
				want, wantErr := Compile(in)
				if diff := stateDiff(want, got); diff != "" || !reflect.DeepEqual(want, got) {
					t.Fatalf("seed %d after %v: incremental compile differs from full compile (-full +incremental):\n%s", seed, events, diff)
				}
				require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr), "seed %d after %v", seed, events)
			}
		})
	}
}

// TestIncrementalCompileReusesUntouchedPolicies checks that the cache does what it is for:
// after one local pod like pod-0 is added to the workload of record, no policy chain is
// rebuilt and no chain changes at all: the pod joins pod-0's groups, so only set members
// change and the Ruleset keeps the very chain list Apply last wrote (sameList). The result
// equals a full compile.
func TestIncrementalCompileReusesUntouchedPolicies(t *testing.T) {
	in := workloadInput(50, 100, 5000, 100, 1000)
	cache := newCompileCache()
	first, err := cache.compile(in)
	require.NoError(t, err)
	before := maps.Clone(cache.families[corev1.IPv4Protocol].policies)

	in.Pods = append(slices.Clone(in.Pods), workloadPod(in.Pods[0], "pod-new", "10.42.0.250"))
	got, err := cache.compile(in)
	require.NoError(t, err)
	want, err := Compile(in)
	require.NoError(t, err)
	require.Empty(t, stateDiff(want, got))
	require.True(t, reflect.DeepEqual(want, got))
	rebuilt := 0
	for key, e := range cache.families[corev1.IPv4Protocol].policies {
		if before[key] != e {
			rebuilt++
		}
	}
	require.Zero(t, rebuilt, "a pod added changes set members, not policy chains")
	require.True(t, sameList(first.Rulesets[0].Chains, got.Rulesets[0].Chains), "a pod that joins existing groups changes no chain")
	require.NotEqual(t, first.Rulesets[0].Sets, got.Rulesets[0].Sets, "its address joins sets")
}

// stateDiff renders both states as restore text and returns the lines only one of them has,
// "-" for want and "+" for got, at most 40; "" when the texts are equal.
func stateDiff(want, got State) string {
	text := func(st State) []string {
		var lines []string
		for _, rs := range st.Rulesets {
			lines = append(lines, "# "+string(rs.Family))
			lines = append(lines, strings.Split(renderIPTables(rs, tableState{}, nil), "\n")...)
			lines = append(lines, strings.Split(renderNewSets(rs.Sets), "\n")...)
		}
		return lines
	}
	w, g := text(want), text(got)
	var out []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "-"+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+"+l)
		}
	}
	if len(out) == 0 && !slices.Equal(w, g) {
		out = append(out, "(same lines in another order)")
	}
	return strings.Join(out[:min(len(out), 40)], "\n")
}

// TestSetEntriesAreThePodsAddressText checks that a pod set's entries are the pods' own
// strings when those are the canonical text of the address, so sets cost no string per
// entry, and the canonical text otherwise (an IPv4-mapped or upper-case address), as
// ipset lists it.
func TestSetEntriesAreThePodsAddressText(t *testing.T) {
	a := makePod("x", "a", withIPs("10.0.1.1", "fd00::1"))
	b := makePod("x", "b", withIPs("::ffff:10.0.1.2", "FD00::2"))
	in := Input{NodeName: "node-1", Namespaces: []*corev1.Namespace{makeNamespace("x")}, Pods: []*corev1.Pod{a, b},
		Policies: []*networkingv1.NetworkPolicy{makePolicy("x", "p", ingressRules(from(peers(podPeer(labelsSel())))))},
		Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}}
	st, err := Compile(in)
	require.NoError(t, err)
	want := map[corev1.IPFamily][]string{corev1.IPv4Protocol: {"10.0.1.1", "10.0.1.2"}, corev1.IPv6Protocol: {"fd00::1", "fd00::2"}}
	for i, rs := range st.Rulesets {
		var peerSet *IPSet
		for j := range rs.Sets {
			if rs.Sets[j].Type == setTypeIP && !rs.Sets[j].AddLast {
				peerSet = &rs.Sets[j]
			}
		}
		require.NotNil(t, peerSet, "family %s has the peer set", rs.Family)
		require.Equal(t, want[rs.Family], peerSet.Entries)
		own := a.Status.PodIPs[i].IP
		assert.Same(t, unsafe.StringData(own), unsafe.StringData(peerSet.Entries[0]), "%s is pod a's own string", own)
	}
}
