package forwarder

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// builtinChains are the chains a fresh netns has in the tables the forwarder uses.
func builtinChains() map[string][]string {
	return map[string][]string{
		tableFilter: {"INPUT", chainForward, "OUTPUT"},
		tableNAT:    {chainPrerouting, "INPUT", "OUTPUT", chainPostrouting},
	}
}

// fakeIPTables is an in-memory iptables for one family with the semantics the
// forwarder relies on: -N fails on an existing chain, -A into a missing chain or a
// jump to a missing chain fails, -X fails while a rule jumps to the chain.
type fakeIPTables struct {
	// mu lets a test read the tables while Run runs in another goroutine.
	mu sync.Mutex
	// chains maps "table/chain" to its rules, each rendered as its args joined by spaces.
	chains map[string][]string
	// writes counts every call that changes something.
	writes int
	// fail, when set, can fail a call before it happens: op is the go-iptables method.
	fail func(op, table, chain string) error
}

var _ iptablesRunner = (*fakeIPTables)(nil)

func newFakeIPTables() *fakeIPTables {
	f := &fakeIPTables{chains: map[string][]string{}}
	for table, chains := range builtinChains() {
		for _, c := range chains {
			f.chains[table+"/"+c] = nil
		}
	}
	return f
}

// dump returns a copy of every chain and its rules.
func (f *fakeIPTables) dump() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]string, len(f.chains))
	for k, v := range f.chains {
		if len(v) > 0 {
			out[k] = slices.Clone(v)
		} else {
			out[k] = nil
		}
	}
	return out
}

// add puts a foreign rule or chain in place, as another program would.
func (f *fakeIPTables) add(table, chain string, rulespec ...string) {
	key := table + "/" + chain
	if rulespec == nil {
		f.chains[key] = nil
		return
	}
	f.chains[key] = append(f.chains[key], strings.Join(rulespec, " "))
}

// check asks fail whether the call op should fail.
func (f *fakeIPTables) check(op, table, chain string) error {
	if f.fail != nil {
		return f.fail(op, table, chain)
	}
	return nil
}

func (f *fakeIPTables) isBuiltin(table, chain string) bool {
	return slices.Contains(builtinChains()[table], chain)
}

func (f *fakeIPTables) ChainExists(table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ChainExists", table, chain); err != nil {
		return false, err
	}
	_, ok := f.chains[table+"/"+chain]
	return ok, nil
}

func (f *fakeIPTables) ClearChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ClearChain", table, chain); err != nil {
		return err
	}
	f.writes++
	f.chains[table+"/"+chain] = nil
	return nil
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("List", table, chain); err != nil {
		return nil, err
	}
	rules, ok := f.chains[table+"/"+chain]
	if !ok {
		return nil, fmt.Errorf("fake iptables: no chain %s/%s", table, chain)
	}
	head := "-N " + chain
	if f.isBuiltin(table, chain) {
		head = "-P " + chain + " ACCEPT"
	}
	out := []string{head}
	for _, r := range rules {
		out = append(out, "-A "+chain+" "+r)
	}
	return out, nil
}

// canAdd checks what iptables checks before adding a rule.
func (f *fakeIPTables) canAdd(table, chain string, rulespec []string) error {
	if _, ok := f.chains[table+"/"+chain]; !ok {
		return fmt.Errorf("fake iptables: no chain %s/%s", table, chain)
	}
	if i := slices.Index(rulespec, "-j"); i >= 0 && i+1 < len(rulespec) {
		target := rulespec[i+1]
		if strings.HasPrefix(target, ChainPrefix) {
			if _, ok := f.chains[table+"/"+target]; !ok {
				return fmt.Errorf("fake iptables: jump to missing chain %s/%s", table, target)
			}
		}
	}
	return nil
}

func (f *fakeIPTables) Append(table, chain string, rulespec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Append", table, chain); err != nil {
		return err
	}
	if err := f.canAdd(table, chain, rulespec); err != nil {
		return err
	}
	f.writes++
	f.add(table, chain, rulespec...)
	return nil
}

func (f *fakeIPTables) Exists(table, chain string, rulespec ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Exists", table, chain); err != nil {
		return false, err
	}
	return slices.Contains(f.chains[table+"/"+chain], strings.Join(rulespec, " ")), nil
}

func (f *fakeIPTables) Insert(table, chain string, pos int, rulespec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Insert", table, chain); err != nil {
		return err
	}
	if err := f.canAdd(table, chain, rulespec); err != nil {
		return err
	}
	key := table + "/" + chain
	if pos < 1 || pos > len(f.chains[key])+1 {
		return fmt.Errorf("fake iptables: index %d out of range in %s", pos, key)
	}
	f.writes++
	f.chains[key] = slices.Insert(f.chains[key], pos-1, strings.Join(rulespec, " "))
	return nil
}

func (f *fakeIPTables) Delete(table, chain string, rulespec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Delete", table, chain); err != nil {
		return err
	}
	key := table + "/" + chain
	i := slices.Index(f.chains[key], strings.Join(rulespec, " "))
	if i < 0 {
		return fmt.Errorf("fake iptables: no such rule in %s", key)
	}
	f.writes++
	f.chains[key] = slices.Delete(f.chains[key], i, i+1)
	return nil
}

func (f *fakeIPTables) ClearAndDeleteChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ClearAndDeleteChain", table, chain); err != nil {
		return err
	}
	key := table + "/" + chain
	if _, ok := f.chains[key]; !ok {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(f.chains)) {
		if !strings.HasPrefix(k, table+"/") {
			continue
		}
		for _, r := range f.chains[k] {
			if strings.HasSuffix(r, "-j "+chain) {
				return fmt.Errorf("fake iptables: chain %s is referenced from %s", key, k)
			}
		}
	}
	f.writes++
	delete(f.chains, key)
	return nil
}

// fakeHost serves fixed facts and one fakeIPTables per family.
type fakeHost struct {
	fwd   map[Family]forwarding
	facts backendFacts
	ipt   map[Family]*fakeIPTables
	// commands records the command each family's runner was made for.
	commands map[Family]string
}

var _ host = (*fakeHost)(nil)

// newFakeHost is a dual-stack host with forwarding on, nf_tables loaded and
// Debian's iptables commands.
func newFakeHost() *fakeHost {
	return &fakeHost{
		fwd: bothOn(),
		facts: backendFacts{modulesListed: true, nfTablesLoaded: true, commands: map[string]Backend{
			"iptables": BackendNFT, "iptables-nft": BackendNFT, "iptables-legacy": BackendLegacy,
			"ip6tables": BackendNFT, "ip6tables-nft": BackendNFT, "ip6tables-legacy": BackendLegacy,
		}},
		ipt:      map[Family]*fakeIPTables{IPv4: newFakeIPTables(), IPv6: newFakeIPTables()},
		commands: map[Family]string{},
	}
}

func (h *fakeHost) forwarding(fam Family) (forwarding, error) { return h.fwd[fam], nil }

func (h *fakeHost) backendFacts([]Family) (backendFacts, error) { return h.facts, nil }

func (h *fakeHost) iptables(fam Family, command string) (iptablesRunner, error) {
	h.commands[fam] = command
	return h.ipt[fam], nil
}

// dump returns both families' tables.
func (h *fakeHost) dump() map[Family]map[string][]string {
	return map[Family]map[string][]string{IPv4: h.ipt[IPv4].dump(), IPv6: h.ipt[IPv6].dump()}
}

// writes returns both families' write counts.
func (h *fakeHost) writes() int {
	n := 0
	for _, ipt := range h.ipt {
		ipt.mu.Lock()
		n += ipt.writes
		ipt.mu.Unlock()
	}
	return n
}
