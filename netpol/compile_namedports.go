package netpol

import (
	"maps"
	"net/netip"
	"slices"
)

// refreshNamedPorts builds the named port index on the first compile and then moves the
// changed pods' addresses in it, marking the names whose pods changed. After the first
// compile the index holds only the names some rule uses (pruneNamedPorts), as every pod
// serves names no policy mentions; a name a rule starts using is indexed then
// (namedPortsOf).
func (fc *familyCompiler) refreshNamedPorts() {
	if fc.cache.namedPorts == nil {
		fc.cache.namedPorts = fc.namedPortIndex(fc.usedNamedPorts())
		return
	}
	for _, p := range fc.podsGone {
		fc.moveNamedPorts(&p, false)
	}
	for _, p := range fc.podsCome {
		fc.moveNamedPorts(&p, true)
	}
	for key, nums := range fc.touchedNamed {
		sets := fc.cache.namedSets[key]
		if sets == nil {
			continue // no rule uses the name
		}
		byNum := fc.cache.namedPorts[key]
		if len(sets) != len(byNum) || !maps.EqualFunc(sets, byNum, func(IPSet, []netip.Addr) bool { return true }) {
			// A number came or went: the rules change, so the policies using it are rebuilt.
			fc.changedNamed[key] = true
			delete(fc.cache.namedSets, key)
			continue
		}
		for n, moved := range nums {
			set := sets[n]
			if len(moved) > maxIncrementalMoves {
				set = fc.namedPortSet(key, n, byNum[n])
			} else {
				for _, a := range moved {
					_, present := slices.BinarySearchFunc(byNum[n], a, netip.Addr.Compare)
					set.Entries = fc.withEntry(set.Entries, a, present)
				}
			}
			if !slices.Equal(set.Entries, sets[n].Entries) {
				sets[n] = set
				fc.setChanged(set.Name)
			}
		}
	}
}

// moveNamedPorts adds a pod's address to the named port index, or removes it. The lists stay
// sorted and keep duplicates (two pods may briefly share an address); sets drop them.
func (fc *familyCompiler) moveNamedPorts(p *podInfo, add bool) {
	a := p.addr(fc.fam)
	if !a.IsValid() {
		return
	}
	for _, np := range p.namedPorts() {
		key := np.name + "/" + string(np.proto)
		byNum := fc.cache.namedPorts[key]
		if byNum == nil {
			continue // not indexed: no rule uses the name
		}
		if fc.touchedNamed[key] == nil {
			fc.touchedNamed[key] = map[int32][]netip.Addr{}
		}
		fc.touchedNamed[key][np.number] = append(fc.touchedNamed[key][np.number], a)
		addrs := byNum[np.number]
		i, found := slices.BinarySearchFunc(addrs, a, netip.Addr.Compare)
		switch {
		case add:
			byNum[np.number] = slices.Insert(addrs, i, a)
		case found && len(addrs) == 1:
			delete(byNum, np.number)
		case found:
			byNum[np.number] = slices.Delete(addrs, i, i+1)
		}
	}
}

// namedPortsOf returns the index entry of "name/PROTO" key, indexing the name from every
// pod when no rule used it so far.
func (fc *familyCompiler) namedPortsOf(key string) map[int32][]netip.Addr {
	byNum := fc.cache.namedPorts[key]
	if byNum == nil {
		byNum = fc.namedPortIndex(map[string]bool{key: true})[key]
		if byNum == nil {
			byNum = map[int32][]netip.Addr{} // indexed, though no pod serves it
		}
		fc.cache.namedPorts[key] = byNum
	}
	return byNum
}

// pruneNamedPorts drops the index entries of the names no rule uses.
func (fc *familyCompiler) pruneNamedPorts() {
	maps.DeleteFunc(fc.cache.namedPorts, func(key string, _ map[int32][]netip.Addr) bool {
		return fc.cache.namedUsers[key] == nil
	})
}

// usedNamedPorts returns the "name/PROTO" of every named port a policy rule has.
func (fc *familyCompiler) usedNamedPorts() map[string]bool {
	used := map[string]bool{}
	for _, list := range fc.policiesByNS {
		for _, p := range list {
			for _, rules := range [][]ruleInfo{p.ingress, p.egress} {
				for i := range rules {
					for _, port := range rules[i].ports {
						if port.named != "" {
							used[port.named+"/"+string(port.proto)] = true
						}
					}
				}
			}
		}
	}
	return used
}

// namedPortIndex maps each "name/PROTO" of keys to the numbers the family's pods serve
// under it and each number to their addresses, sorted, once per port entry as
// moveNamedPorts keeps them.
func (fc *familyCompiler) namedPortIndex(keys map[string]bool) map[string]map[int32][]netip.Addr {
	idx := map[string]map[int32][]netip.Addr{}
	for _, pods := range fc.byNamespace {
		for _, cp := range pods {
			if cp.ok {
				fc.indexNamedPorts(idx, &cp.info, keys)
			}
		}
	}
	for _, byNum := range idx {
		for _, addrs := range byNum {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	return idx
}

// indexNamedPorts adds a pod's address under each of its named ports to idx.
func (fc *familyCompiler) indexNamedPorts(idx map[string]map[int32][]netip.Addr, p *podInfo, keys map[string]bool) {
	a := p.addr(fc.fam)
	if !a.IsValid() {
		return
	}
	var buf [64]byte
	for np := range p.eachNamedPort {
		// The key is built on the stack: the lookups with string(key) do not allocate.
		key := append(append(append(buf[:0], np.name...), '/'), np.proto...)
		if !keys[string(key)] {
			continue
		}
		byNum := idx[string(key)]
		if byNum == nil {
			byNum = map[int32][]netip.Addr{}
			idx[string(key)] = byNum
		}
		byNum[np.number] = append(byNum[np.number], a)
	}
}
