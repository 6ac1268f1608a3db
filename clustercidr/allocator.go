package clustercidr

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Allocator hands out per-node pod CIDRs from ClusterCIDRs, as kube-controller-manager's
// MultiCIDRRangeAllocator did, over plain values: no client, no lister. It is
// safe for concurrent use.
//
// Rules it keeps:
//   - a node gets its blocks from the first ClusterCIDR, in the order of rankFor, that has a
//     free block in every family it defines, and gets all of those blocks or nothing;
//   - within a ClusterCIDR the lowest free block is handed out first;
//   - no address is handed out twice across all ClusterCIDRs, even overlapping ones, and no
//     block overlapping a service CIDR is handed out;
//   - a terminating ClusterCIDR hands out nothing, and is dropped only once no node holds
//     blocks from it (the finalizer's job);
//   - a failed call changes nothing, except that Occupy holds CIDRs outside every
//     ClusterCIDR while reporting them (ErrCIDROutsideClusterCIDRs).
type Allocator struct {
	mu sync.Mutex
	// byName indexes the ClusterCIDRs by object name.
	byName map[string]*clusterCIDR
	// ranked holds the same ClusterCIDRs in compareStatic order.
	ranked []*clusterCIDR
	// nodes holds what each node has, whether allocated here or occupied.
	nodes map[string]*held
	// unattributed is the subset of nodes with a pod CIDR that lies in no ClusterCIDR (yet).
	unattributed map[string]*held
	// used holds every pod CIDR of every node, per family: the global overlap check.
	used [numFamilies]rangeSet
	// reserved holds the service CIDRs, per family; they are never handed out.
	reserved [numFamilies]rangeSet
	// index narrows the ClusterCIDRs whose selectors are matched for a node.
	index selectorIndex
	// sets finds, per family, the ClusterCIDRs' sets a released block lies in.
	sets [numFamilies]setIndex
	// scratch and maySelect are reused under mu by rankFor and the index, so allocating does
	// not allocate a candidate list.
	scratch   []candidate
	maySelect []*clusterCIDR
}

// clusterCIDR is one ClusterCIDR known to the allocator.
type clusterCIDR struct {
	name        string
	selector    *nodeSelector // nil selects every node
	hostBits    int
	sets        [numFamilies]*cidrSet // nil for a family the ClusterCIDR does not define
	terminating bool
	// nodes are the nodes holding blocks attributed to this ClusterCIDR (AssociatedNodes in
	// upstream's multi-CIDR allocator): while any is left, deletion waits.
	nodes map[string]struct{}
}

// held is what one node holds.
type held struct {
	prefixes []netip.Prefix
	// owners[i] is the ClusterCIDR prefixes[i] is attributed to, nil when it lies in none (see
	// Occupy). An allocation has one owner for all; occupied CIDRs may have one per family.
	owners []*clusterCIDR
}

// Allocation is the pod CIDRs a node holds, IPv4 first, and the ClusterCIDRs they belong to.
type Allocation struct {
	// ClusterCIDRs are the names of the ClusterCIDRs the CIDRs belong to, in the order of
	// PodCIDRs, each once: one for an allocation; for occupied CIDRs none if they lie in no
	// ClusterCIDR, or two for a dual-stack node whose families came from different ones.
	ClusterCIDRs []string
	// PodCIDRs are the node's pod CIDRs, at most one per family, IPv4 first: the value for
	// the Node's spec.podCIDRs.
	PodCIDRs []netip.Prefix
}

// Usage is the state of one family of one ClusterCIDR, for metrics and status.
type Usage struct {
	// Prefix is the ClusterCIDR's range in this family.
	Prefix netip.Prefix
	// BlockBits is the prefix length of each node's block.
	BlockBits int
	// Blocks is the number of blocks in Prefix, saturating at math.MaxUint64 (IPv6).
	Blocks uint64
	// Free is the number of blocks that overlap no node's CIDR and no service CIDR.
	Free uint64
}

// NewAllocator returns an Allocator with no ClusterCIDRs that never hands out a block
// overlapping one of serviceCIDRs (--service-cluster-ip-range; upstream marked them occupied
// in every overlapping set). serviceCIDRs is not retained.
func NewAllocator(serviceCIDRs []netip.Prefix) (*Allocator, error) {
	a := &Allocator{
		byName:       map[string]*clusterCIDR{},
		nodes:        map[string]*held{},
		unattributed: map[string]*held{},
	}
	for _, p := range serviceCIDRs {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("service CIDR %s is not a valid prefix", p)
		}
		a.reserved[familyOf(p.Addr())].add(spanOf(p.Masked()))
	}
	return a, nil
}

// AddClusterCIDR makes the ClusterCIDR name with spec available for allocation. Adding the
// same name with the same spec again is a no-op, so informer resyncs are harmless; a different
// spec under a known name is refused, since every spec field is immutable. A node
// CIDR occupied outside every ClusterCIDR is attributed to this one if it contains it.
// Errors match ErrInvalidClusterCIDR. spec is not modified or retained.
func (a *Allocator) AddClusterCIDR(name string, spec ClusterCIDRSpec) error {
	if name == "" {
		return &FieldError{"metadata.name", "must not be empty"}
	}
	ps, err := parseSpec(spec)
	if err != nil {
		return fmt.Errorf("ClusterCIDR %q: %w", name, err)
	}
	cc := &clusterCIDR{name: name, selector: ps.selector, hostBits: ps.hostBits, nodes: map[string]struct{}{}}
	for f, p := range ps.prefixes {
		if p.IsValid() {
			cc.sets[f] = newCIDRSet(p, ps.hostBits)
		}
	}
	return a.add(cc)
}

// AddRange makes name a range the way kube-controller-manager's range allocator uses
// --cluster-cidr, which is how K3s allocates without --multi-cluster-cidr: at most one prefix
// per family, each cut into blocks of its own node mask (--node-cidr-mask-size-ipv4 and
// -ipv6, /24 and /64 in K3s), every node selected. Unlike a ClusterCIDR's families, the two
// need not have the same host bits. Adding the same range again is a no-op; errors match
// ErrInvalidClusterCIDR.
func (a *Allocator) AddRange(name string, prefixes []netip.Prefix, nodeMaskIPv4, nodeMaskIPv6 int) error {
	cc, err := newRange(name, prefixes, nodeMaskIPv4, nodeMaskIPv6)
	if err != nil {
		return err
	}
	return a.add(cc)
}

// newRange builds the ClusterCIDR AddRange adds, or says what is wrong with the range.
func newRange(name string, prefixes []netip.Prefix, nodeMaskIPv4, nodeMaskIPv6 int) (*clusterCIDR, error) {
	if name == "" {
		return nil, &FieldError{"metadata.name", "must not be empty"}
	}
	if len(prefixes) == 0 {
		return nil, fmt.Errorf("range %q: no prefix: %w", name, ErrInvalidClusterCIDR)
	}
	cc := &clusterCIDR{name: name, nodes: map[string]struct{}{}}
	masks := [numFamilies]int{ipv4: nodeMaskIPv4, ipv6: nodeMaskIPv6}
	for _, p := range prefixes {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("range %q: %s is not a valid prefix: %w", name, p, ErrInvalidClusterCIDR)
		}
		f := familyOf(p.Addr())
		if cc.sets[f] != nil {
			return nil, fmt.Errorf("range %q: two %s prefixes: %w", name, f, ErrInvalidClusterCIDR)
		}
		if masks[f] < p.Bits() || masks[f] > f.bits() {
			return nil, fmt.Errorf("range %q: the %s node mask /%d does not fit in %s: %w", name, f, masks[f], p.Masked(), ErrInvalidClusterCIDR)
		}
		cc.sets[f] = newCIDRSet(p.Masked(), f.bits()-masks[f])
		if cc.hostBits == 0 || f == ipv4 {
			cc.hostBits = cc.sets[f].hostBits // only ranks it against others; a range is alone
		}
	}
	return cc, nil
}

// add makes cc available for allocation (see AddClusterCIDR).
func (a *Allocator) add(cc *clusterCIDR) error {
	name := cc.name
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.byName[name]; old != nil {
		if old.sameSpec(cc) {
			return nil
		}
		return fmt.Errorf("ClusterCIDR %q: %w", name, &FieldError{"spec", "is immutable, and differs from the spec in use"})
	}
	a.byName[name] = cc
	i, _ := slices.BinarySearchFunc(a.ranked, cc, compareStatic)
	a.ranked = slices.Insert(a.ranked, i, cc)
	a.index.add(cc)
	for f, set := range cc.sets {
		if set != nil {
			a.sets[f].add(set)
		}
	}
	for node, h := range a.unattributed {
		outside := false
		for i, p := range h.prefixes {
			if h.owners[i] == nil && cc.containsAll(p) {
				h.owners[i] = cc
				cc.nodes[node] = struct{}{}
			}
			outside = outside || h.owners[i] == nil
		}
		if !outside {
			delete(a.unattributed, node)
		}
	}
	return nil
}

// DeleteClusterCIDR marks the ClusterCIDR name terminating, so it hands out no more blocks,
// and returns the sorted names of the nodes that still hold blocks from it. While that list
// is not empty the controller keeps Finalizer and reports the nodes in a Warning Event; the
// blocks stay occupied until those nodes are released. Once it is empty the ClusterCIDR is
// forgotten and the finalizer may go; call again after each release to find out. An unknown
// name returns nil, so deletion is idempotent.
func (a *Allocator) DeleteClusterCIDR(name string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	cc := a.byName[name]
	if cc == nil {
		return nil
	}
	cc.terminating = true
	if len(cc.nodes) > 0 {
		return slices.Sorted(maps.Keys(cc.nodes))
	}
	delete(a.byName, name)
	a.ranked = slices.DeleteFunc(a.ranked, func(c *clusterCIDR) bool { return c == cc })
	a.index.remove(cc)
	for f, set := range cc.sets {
		if set != nil {
			a.sets[f].remove(set)
		}
	}
	return nil
}

// Allocate gives node n pod CIDRs from the best ClusterCIDR that selects it and has a free
// block in every family it defines (rankFor, upstream's order). A node that already holds an
// allocation gets it back unchanged, so a retry after a failed Node patch is harmless.
//
// n.PodCIDRs must be empty: a node's pod CIDRs never change (spec.podCIDRs is immutable once
// set, so a node that already has a CIDR cannot get a new one); use Occupy for those. Errors: ErrNoCIDRAvailable,
// ErrAlreadyAllocated, ErrInvalidNode. On error nothing changes.
func (a *Allocator) Allocate(n Node) (Allocation, error) {
	if n.Name == "" {
		return Allocation{}, fmt.Errorf("node without a name: %w", ErrInvalidNode)
	}
	if len(n.PodCIDRs) > 0 {
		return Allocation{}, fmt.Errorf("node %q already has pod CIDRs %v, which cannot change: %w", n.Name, n.PodCIDRs, ErrAlreadyAllocated)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.nodes[n.Name]; h != nil {
		return h.allocation(), nil
	}
	a.rank(n)
	defer a.clearScratch()
	if len(a.scratch) == 0 {
		return Allocation{}, fmt.Errorf("node %q: no ClusterCIDR selects it: %w", n.Name, ErrNoCIDRAvailable)
	}
next:
	for _, c := range a.scratch {
		// All families of the ClusterCIDR or none: find every block before taking any.
		var blocks [numFamilies]span
		for f, set := range c.cc.sets {
			if set == nil {
				continue
			}
			b, ok := set.findFree(&a.used[f], &a.reserved[f])
			if !ok {
				continue next
			}
			blocks[f] = b
		}
		h := &held{prefixes: make([]netip.Prefix, 0, numFamilies), owners: make([]*clusterCIDR, 0, numFamilies)}
		for f, set := range c.cc.sets {
			if set == nil {
				continue
			}
			a.used[f].add(blocks[f])
			set.taken(blocks[f])
			h.prefixes = append(h.prefixes, set.prefixOf(blocks[f]))
			h.owners = append(h.owners, c.cc)
		}
		a.nodes[n.Name] = h
		c.cc.nodes[n.Name] = struct{}{}
		return h.allocation(), nil
	}
	names := make([]string, len(a.scratch))
	for i, c := range a.scratch {
		names[i] = c.cc.name
	}
	return Allocation{}, fmt.Errorf("node %q: every ClusterCIDR that selects it is full (%s): %w",
		n.Name, strings.Join(names, ", "), ErrNoCIDRAvailable)
}

// Release frees the pod CIDRs of the node name, when the Node is deleted, and returns what it
// held. The ClusterCIDRs it names may be terminating and now deletable (DeleteClusterCIDR), and
// nodes waiting for CIDRs may now fit.
func (a *Allocator) Release(name string) (Allocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.nodes[name]
	if h == nil {
		return Allocation{}, false
	}
	a.releaseLocked(name, h)
	return h.allocation(), true
}

// releaseLocked forgets what node name holds and lowers the cursor of every set whose range
// the freed addresses touch, so they are found again lowest-first.
func (a *Allocator) releaseLocked(name string, h *held) {
	for _, p := range h.prefixes {
		f, sp := familyOf(p.Addr()), spanOf(p)
		a.used[f].remove(sp)
		a.sets[f].overlapping(f, sp, func(set *cidrSet) { set.lower(sp) })
	}
	delete(a.nodes, name)
	delete(a.unattributed, name)
	for _, cc := range h.owners {
		if cc != nil {
			delete(cc.nodes, name)
		}
	}
}

// Lookup returns what the node name holds.
func (a *Allocator) Lookup(name string) (Allocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.nodes[name]
	if h == nil {
		return Allocation{}, false
	}
	return h.allocation(), true
}

// NodesUsing returns the sorted names of the nodes holding blocks of the ClusterCIDR name.
func (a *Allocator) NodesUsing(name string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	cc := a.byName[name]
	if cc == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(cc.nodes))
}

// Usage returns the state of each family of the ClusterCIDR name, IPv4 first. Counting walks
// the used ranges inside the ClusterCIDR, so call it for metrics, not per node.
func (a *Allocator) Usage(name string) ([]Usage, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cc := a.byName[name]
	if cc == nil {
		return nil, false
	}
	var out []Usage
	for f, set := range cc.sets {
		if set == nil {
			continue
		}
		out = append(out, Usage{
			Prefix:    set.prefix,
			BlockBits: family(f).bits() - set.hostBits,
			Blocks:    set.blocks(),
			Free:      set.free(&a.used[f], &a.reserved[f]),
		})
	}
	return out, true
}

// rank sets a.scratch to the ClusterCIDRs that select n, in the order allocation tries them.
func (a *Allocator) rank(n Node) {
	a.maySelect = a.index.candidates(a.maySelect[:0], n)
	a.scratch = rankFor(a.scratch[:0], a.maySelect, n)
}

// clearScratch drops the scratch lists' pointers to ClusterCIDRs that may be deleted later.
func (a *Allocator) clearScratch() {
	clear(a.scratch)
	clear(a.maySelect)
}

func (h *held) allocation() Allocation {
	al := Allocation{PodCIDRs: slices.Clone(h.prefixes)}
	for _, cc := range h.owners {
		if cc != nil && !slices.Contains(al.ClusterCIDRs, cc.name) {
			al.ClusterCIDRs = append(al.ClusterCIDRs, cc.name)
		}
	}
	return al
}

// outside returns the prefixes attributed to no ClusterCIDR.
func (h *held) outside() []netip.Prefix {
	var out []netip.Prefix
	for i, p := range h.prefixes {
		if h.owners[i] == nil {
			out = append(out, p)
		}
	}
	return out
}

// sizeLog2 is log2 of the ClusterCIDR's allocatable blocks: the smaller family's, since a
// dual-stack node takes one block of each (upstream's priority P1 used the minimum of the
// families' MaxCIDRs).
func (cc *clusterCIDR) sizeLog2() int {
	n := -1
	for _, set := range cc.sets {
		if set != nil && (n < 0 || set.sizeLog2() < n) {
			n = set.sizeLog2()
		}
	}
	return n
}

// primary is the prefix compared by P4: the IPv4 one if any, else the IPv6 one.
func (cc *clusterCIDR) primary() netip.Prefix {
	if cc.sets[ipv4] != nil {
		return cc.sets[ipv4].prefix
	}
	return cc.sets[ipv6].prefix
}

// containsAll reports whether every prefix lies inside the ClusterCIDR's range of its family.
func (cc *clusterCIDR) containsAll(prefixes ...netip.Prefix) bool {
	for _, p := range prefixes {
		set := cc.sets[familyOf(p.Addr())]
		if set == nil || !set.contains(p) {
			return false
		}
	}
	return true
}

// sameSpec compares what the allocator uses of two specs; selectors compare by canonical text,
// so reordered terms or values are the same spec.
func (cc *clusterCIDR) sameSpec(o *clusterCIDR) bool {
	if cc.hostBits != o.hostBits || cc.selector.String() != o.selector.String() {
		return false
	}
	for f := range cc.sets {
		x, y := cc.sets[f], o.sets[f]
		if (x == nil) != (y == nil) || x != nil && (x.prefix != y.prefix || x.hostBits != y.hostBits) {
			return false
		}
	}
	return true
}
