// Package netpol enforces Kubernetes NetworkPolicies on one node with iptables and ipset, as
// the kube-router network policy controller embedded in K3s does, with the same chain, ipset
// and mark names (KUBE-ROUTER-INPUT/FORWARD/OUTPUT, KUBE-POD-FW-*, KUBE-NWPLCY-*,
// KUBE-SRC-*/KUBE-DST-*) so the documented K3s cleanup commands keep working. Those names are
// all it owns: other KUBE-ROUTER-* chains, such as kube-router's service proxy chain
// KUBE-ROUTER-SERVICES and its jump from INPUT, are left alone by every sync and by Cleanup.
//
// The package is a pipeline of three stages:
//
//   - Compile (pure) turns the node's view of the cluster (Input: every pod, namespace and
//     policy, the node's pod CIDRs) into the desired State, one Ruleset of chains and ipsets
//     per IP family;
//   - render (pure, internal) turns a Ruleset and the little it must know of the kernel (which
//     of our chains and sets exist, where our jumps sit) into ipset restore and
//     iptables-restore --noflush text that declares only our chains, so kube-proxy's,
//     flannel's and everyone else's rules survive every sync;
//   - Dataplane.Apply runs that text, and Dataplane.Cleanup removes all of ours.
//
// Controller runs the pipeline on one node (New, Start): informer handlers for pods,
// namespaces, NetworkPolicies and the node's own Node (all of its spec.podCIDRs) only signal
// one coalescing runner, which, once every cache has synced, computes the whole state from
// the listers and applies it. The compile keeps its results between syncs and recomputes
// only the sets and chains an event touched (with the same result as Compile), and Apply
// rewrites only the chains that changed. Bursts of events merge into one sync
// (Options.MinSyncInterval), failed syncs are retried with backoff, and a sync runs at least
// every Options.MaxSyncInterval to repair drift. A state equal to the one applied last runs
// no command. Start fails, naming the tool and the package to install, when iptables,
// ip6tables (for a node with IPv6 pod CIDRs) or ipset is missing or not permitted, where K3s
// silently runs no controller. When Start's context ends the rules stay (fail closed, as
// kube-router); Cleanup removes them. ClusterRole is the least-privilege role the controller
// needs.
//
// As in kube-router, every pod chain first accepts ICMP echo requests, destination
// unreachable and time exceeded (and, for IPv6, neighbour discovery and echo replies), so ping
// still diagnoses an isolated pod (Options.DenyICMPEcho refuses echo instead); packets a pod
// chain rejects go first to NFLOG group 100, at most 10 a minute per chain, so
// `tcpdump -i nflog:100` shows what policies deny; and the controller's metrics are also
// exported under kube-router's kube_router_controller_* names.
//
// Package netpol/reference holds Evaluate and Reachability, the reference semantics the
// dataplane is tested against with real packets; a separate package, so the compiler keeps
// it sharing no code with Compile.
//
// Where we differ from kube-router, on purpose: local pods that the same policies select share
// one KUBE-POD-FW-* chain per direction, which the top-level chains find by a set of the pods'
// addresses, so a pod that starts beside others of its kind changes set members and no rule
// (ProgrammedPodsSet lists the pods whose rules are in place); each policy direction has its
// own chain, so a two-way policy's ingress rules never allow its egress; ipBlock except is
// subtracted per peer, so peers of one rule stay OR-ed; /0 covers every address of both
// families; a named egress port without "to" resolves against every namespace's pods; chain
// and set names derive from content or identity, never a sync counter, so an unchanged state
// renders byte-identical text, and a pod event changes set members in place instead of every
// chain that uses the sets; and the node's pod CIDRs are default-deny until a local pod is
// programmed, covering every CIDR of the node.
//
// K3s documents `iptables-save | grep -v KUBE-ROUTER | iptables-restore` (and ip6tables) to
// drop the rules after --disable-network-policy. On our rules it removes the three top-level
// chains and the jumps to them from INPUT, FORWARD and OUTPUT, so no packet reaches our rules
// any more; it leaves the KUBE-POD-FW-* and KUBE-NWPLCY-* chains (unreferenced) and every
// KUBE-SRC-*/KUBE-DST-* set behind, as it does with kube-router's. Dataplane.Cleanup leaves
// nothing.
package netpol
