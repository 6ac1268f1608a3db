package netpol

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/netpol/reference"
)

// Cyclonus-style generated cases on the model node: random targets, peers
// (podSelector, namespaceSelector, both, ipBlock with and without except, in both families),
// ports (numeric, named, protocol only, endPort ranges, pathological ones no pod serves) and
// policyTypes, with random extra labels on pods and namespaces for the selectors to find and
// a few pods declaring the named ports on each other's numbers.
// Every case is applied to the kernel and its matrices compared with the evaluator's.

const (
	// genSeedEnv overrides the seed of the generated cases, to replay a failure.
	genSeedEnv = "K3SNET_NETPOL_SEED"
	// genCasesEnv overrides how many cases are generated.
	genCasesEnv = "K3SNET_NETPOL_CASES"
	// genDefaultSeed keeps CI reproducible; set genSeedEnv to explore other cases.
	genDefaultSeed = 20261127
	// genDefaultCases is the number of cases the issue asks for.
	genDefaultCases = 300
)

// genCase is one generated case: extra labels on the model and the policies in force.
type genCase struct {
	index     int
	name      string
	nsTweaks  map[string][]func(*corev1.Namespace)
	podTweaks map[string][]func(*corev1.Pod)
	// labels describes the extra labels, for failure messages.
	labels   []string
	policies []*networkingv1.NetworkPolicy
	probes   []reference.Probe
	// sampled holds the cells, as source*genHosts+destination, that the probes after the
	// first try.
	sampled map[int]bool
}

// genHosts is the number of model pods; genSampled is how many of the 72 cells between them
// the probes after a case's first probe try.
const (
	genHosts   = 9
	genSampled = 24
)

// sample reports whether the probes after the first try the cell from pod i to pod j.
func (c genCase) sample(i, j int) bool { return c.sampled[i*genHosts+j] }

// caseGenerator draws cases from a seeded source, so a seed names a list of cases.
type caseGenerator struct {
	r *rand.Rand
}

// pick returns one of xs at random.
func pick[T any](g *caseGenerator, xs ...T) T { return xs[g.r.IntN(len(xs))] }

// chance reports true with probability p.
func (g *caseGenerator) chance(p float64) bool { return g.r.Float64() < p }

// genProbes are the probes every case runs, IPv4 TCP on 80 and 81, then one of
// genExtraProbes in turn (UDP, and IPv6 to check the inet6 sets and ipBlocks) and, every
// genTCP6Every cases, IPv6 TCP, which is rarer because each of its blocked cells costs a
// second. The first probe tries the whole matrix, the others the case's sampled cells.
var (
	genProbes      = []reference.Probe{{Port: 80, Family: corev1.IPv4Protocol}, {Port: 81, Family: corev1.IPv4Protocol}}
	genExtraProbes = []reference.Probe{
		{Protocol: corev1.ProtocolUDP, Port: 80, Family: corev1.IPv4Protocol},
		{Protocol: corev1.ProtocolUDP, Port: 81, Family: corev1.IPv6Protocol},
		{Protocol: corev1.ProtocolUDP, Port: 81, Family: corev1.IPv4Protocol},
		{Protocol: corev1.ProtocolUDP, Port: 80, Family: corev1.IPv6Protocol},
	}
	genTCP6Probes = []reference.Probe{{Port: 80, Family: corev1.IPv6Protocol}, {Port: 81, Family: corev1.IPv6Protocol}}
)

// genTCP6Every is how often a case also probes IPv6 TCP; prime to modelNodes, so these slow
// cases spread over every node.
const genTCP6Every = 11

// generateCases returns n cases drawn from seed.
func generateCases(seed uint64, n int) []genCase {
	g := &caseGenerator{r: rand.New(rand.NewPCG(seed, seed^0x6e6574706f6c))}
	cases := make([]genCase, n)
	for i := range cases {
		c := genCase{index: i, name: fmt.Sprintf("gen-%03d", i), nsTweaks: map[string][]func(*corev1.Namespace){},
			podTweaks: map[string][]func(*corev1.Pod){}}
		for _, ns := range modelNamespaces() {
			if g.chance(0.3) {
				c.nsTweaks[ns] = append(c.nsTweaks[ns], withNamespaceLabels("team", "blue"))
				c.labels = append(c.labels, "namespace "+ns+" team=blue")
			}
			for _, pod := range modelPods() {
				if g.chance(0.3) {
					role := pick(g, "client", "server")
					c.podTweaks[ns+"/"+pod] = append(c.podTweaks[ns+"/"+pod], withLabels("role", role))
					c.labels = append(c.labels, "pod "+ns+"/"+pod+" role="+role)
				}
				if g.chance(0.05) {
					c.podTweaks[ns+"/"+pod] = append(c.podTweaks[ns+"/"+pod], swappedPortNames)
					c.labels = append(c.labels, "pod "+ns+"/"+pod+" swaps the port names of 80 and 81")
				}
			}
		}
		for k := range pick(g, 1, 1, 1, 2, 2, 3) {
			c.policies = append(c.policies, g.policy(fmt.Sprintf("p%d", k)))
		}
		c.probes = append(slices.Clone(genProbes), genExtraProbes[i%len(genExtraProbes)])
		c.sampled = map[int]bool{}
		for len(c.sampled) < genSampled {
			if src, dst := g.r.IntN(genHosts), g.r.IntN(genHosts); src != dst {
				c.sampled[src*genHosts+dst] = true
			}
		}
		if i%genTCP6Every == genTCP6Every-1 {
			c.probes = append(c.probes, genTCP6Probes[i/genTCP6Every%len(genTCP6Probes)])
		}
		cases[i] = c
	}
	return cases
}

// swappedPortNames makes a pod declare serve-80-tcp on 81 and serve-81-tcp on 80 (UDP alike),
// so a named port resolves to another number on that pod than on the others.
func swappedPortNames(pod *corev1.Pod) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	servingOnly(containerPort("serve-80-tcp", tcp, 81), containerPort("serve-81-tcp", tcp, 80),
		containerPort("serve-80-udp", udp, 81), containerPort("serve-81-udp", udp, 80))(pod)
}

// policy draws a policy called name in a random namespace.
func (g *caseGenerator) policy(name string) *networkingv1.NetworkPolicy {
	np := makePolicy(pick(g, modelNamespaces()...), name, targets(g.targetSelector()))
	types := pick(g, [][]networkingv1.PolicyType{nil, {typeIngress}, {typeEgress}, {typeIngress, typeEgress}}...)
	np.Spec.PolicyTypes = types
	ingress := types == nil || slices.Contains(types, typeIngress)
	egress := slices.Contains(types, typeEgress) || (types == nil && g.chance(0.5))
	// Rules of a direction policyTypes leaves out are ignored; generate some anyway.
	if ingress || g.chance(0.1) {
		np.Spec.Ingress = genRules(g, func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
			return networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
		})
	}
	if egress || g.chance(0.1) {
		np.Spec.Egress = genRules(g, func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
			return networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports}
		})
	}
	return np
}

// genRules draws one direction's rules: none (nil), deny-all ([]), allow-all ([{}]) or one
// to three rules with random peers and ports.
func genRules[R any](g *caseGenerator, rule func([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) R) []R {
	switch g.r.IntN(8) {
	case 0:
		return nil
	case 1:
		return []R{}
	case 2:
		return []R{rule(nil, nil)}
	}
	rules := make([]R, 1+g.r.IntN(3))
	for i := range rules {
		var peers []networkingv1.NetworkPolicyPeer
		if !g.chance(0.25) {
			for range 1 + g.r.IntN(2) {
				peers = append(peers, g.peer()...)
			}
		}
		var ports []networkingv1.NetworkPolicyPort
		if !g.chance(0.4) {
			for range 1 + g.r.IntN(2) {
				ports = append(ports, g.port())
			}
		}
		rules[i] = rule(peers, ports)
	}
	return rules
}

// targetSelector draws a policy's podSelector.
func (g *caseGenerator) targetSelector() *metav1.LabelSelector {
	return pick(g,
		labelsSel(), labelsSel(), labelsSel("pod", "a"), labelsSel("pod", "a"),
		exprSel("pod", metav1.LabelSelectorOpIn, "a", "b"), exprSel("pod", metav1.LabelSelectorOpNotIn, "c"),
		labelsSel("role", "server"))
}

// podSelector draws a peer's podSelector; nil leaves it out.
func (g *caseGenerator) podSelector() *metav1.LabelSelector {
	return pick(g,
		nil, labelsSel(), labelsSel("pod", "c"), exprSel("pod", metav1.LabelSelectorOpIn, "b", "c"),
		labelsSel("role", "client"), exprSel("role", metav1.LabelSelectorOpExists))
}

// namespaceSelector draws a peer's namespaceSelector; nil leaves it out.
func (g *caseGenerator) namespaceSelector() *metav1.LabelSelector {
	return pick(g,
		nil, labelsSel(), labelsSel("ns", "x"), labelsSel(corev1.LabelMetadataName, "z"),
		exprSel("ns", metav1.LabelSelectorOpNotIn, "y"), labelsSel("team", "blue"),
		exprSel("team", metav1.LabelSelectorOpDoesNotExist))
}

// peer draws a selector peer, or an ipBlock peer of one or both families.
func (g *caseGenerator) peer() []networkingv1.NetworkPolicyPeer {
	if g.chance(0.3) {
		n, p := 1+g.r.IntN(3), 1+g.r.IntN(3)
		var out []networkingv1.NetworkPolicyPeer
		shape := g.r.IntN(6)
		if g.chance(0.7) {
			out = append(out, ipBlock4(shape, n, p))
		}
		if len(out) == 0 || g.chance(0.5) {
			out = append(out, ipBlock6(shape, n, p))
		}
		return out
	}
	for {
		pods, nss := g.podSelector(), g.namespaceSelector()
		if pods != nil || nss != nil {
			return []networkingv1.NetworkPolicyPeer{{PodSelector: pods, NamespaceSelector: nss}}
		}
	}
}

// ipBlock4 returns an IPv4 ipBlock of a shape around model namespace n and pod p.
func ipBlock4(shape, n, p int) networkingv1.NetworkPolicyPeer {
	pod, ns := fmt.Sprintf("10.0.%d.%d/32", n, p), fmt.Sprintf("10.0.%d.0/24", n)
	switch shape {
	case 0:
		return cidrPeer(ns)
	case 1:
		return cidrPeer(ns, pod)
	case 2:
		return cidrPeer("10.0.0.0/16", ns)
	case 3:
		return cidrPeer("0.0.0.0/0", pod, fmt.Sprintf("10.0.%d.0/24", 1+n%3))
	case 4:
		return cidrPeer(pod)
	default:
		return cidrPeer(fmt.Sprintf("10.0.%d.2/31", n), fmt.Sprintf("10.0.%d.3/32", n))
	}
}

// ipBlock6 is ipBlock4 for IPv6.
func ipBlock6(shape, n, p int) networkingv1.NetworkPolicyPeer {
	pod, ns := fmt.Sprintf("fd00::%d:%d/128", n, p), fmt.Sprintf("fd00::%d:0/112", n)
	switch shape {
	case 0:
		return cidrPeer(ns)
	case 1:
		return cidrPeer(ns, pod)
	case 2:
		return cidrPeer("fd00::/64", ns)
	case 3:
		return cidrPeer("::/0", pod, fmt.Sprintf("fd00::%d:0/112", 1+n%3))
	case 4:
		return cidrPeer(pod)
	default:
		return cidrPeer(fmt.Sprintf("fd00::%d:2/127", n), fmt.Sprintf("fd00::%d:3/128", n))
	}
}

// port draws a port entry.
func (g *caseGenerator) port() networkingv1.NetworkPolicyPort {
	tcp, udp, sctp := corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP
	return pick(g,
		// numbered, with and without protocol
		port(80), port(81), protoPort(tcp, 81), protoPort(udp, 80), protoPort(udp, 81), protoPort(sctp, 80),
		// protocol only
		protoOnly(tcp), protoOnly(udp), protoOnly(sctp),
		// named, resolved on each destination pod
		namedPort("serve-80-tcp"), namedPort("serve-81-tcp"), protoNamedPort(udp, "serve-80-udp"),
		protoNamedPort(udp, "serve-81-udp"), protoNamedPort(sctp, "serve-81-sctp"),
		// endPort ranges
		portRange(tcp, 53, 80), portRange(tcp, 81, 84), portRange(udp, 53, 81), portRange(tcp, 79, 80),
		// pathological: protocol of another container port, a name and a number nothing serves
		protoNamedPort(udp, "serve-80-tcp"), protoNamedPort(tcp, "serve-81-udp"), namedPort("serve-7981-tcp"), port(7981))
}

// genSettings returns the seed and number of cases, from the environment when set there.
func genSettings(t *testing.T) (uint64, int) {
	t.Helper()
	seed, n := uint64(genDefaultSeed), genDefaultCases
	if s := os.Getenv(genSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "parsing %s", genSeedEnv)
		seed = v
	}
	if s := os.Getenv(genCasesEnv); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err, "parsing %s", genCasesEnv)
		n = v
	}
	return seed, n
}

// describe renders a case for a failure message: its extra labels and policies as YAML.
func (c genCase) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "extra labels: %v\n", c.labels)
	for _, np := range c.policies {
		out, err := yaml.Marshal(np)
		if err != nil {
			out = []byte(err.Error())
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	return b.String()
}

// TestDataplaneGeneratedCases applies cyclonus-style generated cases to model nodes, one after
// another on each node so every sync is an incremental update of the previous case's rules,
// and requires every probed cell to equal the evaluator's (the whole matrix of the first probe,
// a sample for the others; the number of cells is logged). The seed is logged; running the
// test again with K3SNET_NETPOL_SEED=<seed> replays the same sequence of syncs on every node
// (-run 'TestDataplaneGeneratedCases/<case>$' replays one case on a fresh node).
func TestDataplaneGeneratedCases(t *testing.T) {
	t.Parallel()
	seed, n := genSettings(t)
	t.Logf("%d cases from seed %d (set %s to replay another)", n, seed, genSeedEnv)
	cases := generateCases(seed, n)
	var mu sync.Mutex
	cells := 0
	nodes := newModelNodes(t, modelNodes)
	runOnNodes(t, nodes, cases,
		func(c genCase) string { return c.name },
		func(t *testing.T, tn *testNode, c genCase) {
			after := "a fresh node"
			if c.index >= len(nodes) {
				after = cases[c.index-len(nodes)].name
			}
			m := newModel(c.nsTweaks, c.podTweaks)
			cluster := m.cluster(c.policies...)
			tn.apply(t, tn.modelInput(m, c.policies...))
			for k, probe := range c.probes {
				want, err := reference.Reachability(cluster, m.endpoints(), probe)
				require.NoError(t, err, "case %s (seed %d)\n%s", c.name, seed, c.describe())
				// The first probe covers the whole matrix, the others a sample of it: a sync
				// costs as much as a matrix, so more cases find more than more cells per case.
				sample := func(i, j int) bool { return true }
				if k > 0 {
					sample = c.sample
				}
				got := tn.observeCells(t, probe, sample)
				n := 0
				for i := range got.Allowed {
					for j := range got.Allowed[i] {
						if i != j && !sample(i, j) {
							got.Allowed[i][j] = want.Allowed[i][j] // not probed: nothing to compare
						} else if i != j {
							n++
						}
					}
				}
				mu.Lock()
				cells += n
				mu.Unlock()
				if diff := want.Diff(got); len(diff) > 0 {
					t.Errorf("case %s (seed %d, applied after %s), probe %s: the kernel disagrees with the evaluator:\n%s\n%s\nwant:\n%sgot:\n%s"+
						"replay: %s=%d go test -run 'TestDataplaneGeneratedCases' ./netpol/ (the same sequence on every node)",
						c.name, seed, after, probe, strings.Join(diff, "\n"), c.describe(), want, got, genSeedEnv, seed)
				}
			}
		})
	t.Logf("%d cases, %d cells probed", n, cells)
}

// TestGeneratedCasesCoverSpecFamilies checks the generator without a kernel: a seed gives the
// same cases every time, every case is valid for the evaluator, and the default cases cover
// every family of cases the kernel test relies on (policyTypes, deny-all and allow-all rules,
// each kind of peer, ipBlocks of both families with and without except, ports).
func TestGeneratedCasesCoverSpecFamilies(t *testing.T) {
	cases := generateCases(genDefaultSeed, genDefaultCases)
	again := generateCases(genDefaultSeed, genDefaultCases)
	seen := map[string]int{}
	for i, c := range cases {
		require.Equal(t, c.describe(), again[i].describe(), "case %s is reproducible", c.name)
		m := newModel(c.nsTweaks, c.podTweaks)
		for _, probe := range c.probes {
			_, err := reference.Reachability(m.cluster(c.policies...), m.endpoints(), probe)
			require.NoError(t, err, "case %s\n%s", c.name, c.describe())
			seen["probe "+probe.String()]++
		}
		for _, l := range c.labels {
			if strings.HasSuffix(l, "swaps the port names of 80 and 81") {
				seen["swapped port names"]++
			} else {
				seen["extra labels"]++
			}
		}
		for _, np := range c.policies {
			seen[fmt.Sprintf("policyTypes %v", np.Spec.PolicyTypes)]++
			var peers []networkingv1.NetworkPolicyPeer
			var ports []networkingv1.NetworkPolicyPort
			if np.Spec.Ingress != nil && len(np.Spec.Ingress) == 0 {
				seen["deny-all ingress"]++
			}
			if np.Spec.Egress != nil && len(np.Spec.Egress) == 0 {
				seen["deny-all egress"]++
			}
			for _, r := range np.Spec.Ingress {
				if r.From == nil && r.Ports == nil {
					seen["allow-all ingress"]++
				}
				peers, ports = append(peers, r.From...), append(ports, r.Ports...)
			}
			for _, r := range np.Spec.Egress {
				if r.To == nil && r.Ports == nil {
					seen["allow-all egress"]++
				}
				peers, ports = append(peers, r.To...), append(ports, r.Ports...)
			}
			for _, p := range peers {
				switch {
				case p.IPBlock != nil:
					seen[fmt.Sprintf("ipBlock IPv6 %v with except %v", strings.Contains(p.IPBlock.CIDR, ":"), len(p.IPBlock.Except) > 0)]++
				case p.PodSelector != nil && p.NamespaceSelector != nil:
					seen["pod and namespace selector peer"]++
				case p.PodSelector != nil:
					seen["pod selector peer"]++
				default:
					seen["namespace selector peer"]++
				}
			}
			for _, p := range ports {
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				seen["protocol "+string(proto)]++
				switch {
				case p.Port == nil:
					seen["protocol-only port"]++
				case p.EndPort != nil:
					seen["endPort"]++
				case p.Port.StrVal != "":
					seen["named port"]++
				default:
					seen["numbered port"]++
				}
			}
		}
	}
	for _, family := range []string{
		"extra labels", "swapped port names", "policyTypes []", "policyTypes [Ingress]", "policyTypes [Egress]", "policyTypes [Ingress Egress]",
		"deny-all ingress", "deny-all egress", "allow-all ingress", "allow-all egress",
		"pod selector peer", "namespace selector peer", "pod and namespace selector peer",
		"ipBlock IPv6 false with except false", "ipBlock IPv6 false with except true",
		"ipBlock IPv6 true with except false", "ipBlock IPv6 true with except true",
		"protocol TCP", "protocol UDP", "protocol SCTP", "protocol-only port", "endPort", "named port", "numbered port",
		"probe TCP/80/IPv4", "probe TCP/81/IPv4", "probe UDP/80/IPv4", "probe UDP/81/IPv6", "probe TCP/80/IPv6", "probe TCP/81/IPv6",
	} {
		require.Positive(t, seen[family], "no generated case has %s", family)
	}
}
