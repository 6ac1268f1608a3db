package netpol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Runner runs the command name with args, feeding it stdin, and returns its standard
// output. Its error must describe a failed run, with the command's standard error.
type Runner func(ctx context.Context, stdin, name string, args ...string) (string, error)

// ExecRunner is the Runner that executes commands on the host.
func ExecRunner(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Dataplane programs a State into the kernel with ipset and iptables-restore. It is the one
// place that talks to the kernel (STYLE §4); it keeps no state between calls, so every Apply
// reads back what it needs and a restart needs no recovery.
type Dataplane struct {
	run Runner
	// mu serializes Apply and Cleanup, which read and write applied.
	mu sync.Mutex
	// applied remembers, per family, what the last successful Apply left in the filter table,
	// so the next one need not read the whole table back (iptables-save of the workload of
	// record takes about 0.5 s on nft, longer than the restore). It is a cache, never the
	// truth: without an entry (first sync, after a failure or Cleanup) Apply reads the table.
	applied map[corev1.IPFamily]appliedTable
}

// appliedTable is what one successful Apply left in a family's filter table.
type appliedTable struct {
	// rules maps each of our chains to its rules joined by newlines.
	rules map[string]string
}

// NewDataplane returns a Dataplane running its commands through run; nil means ExecRunner.
func NewDataplane(run Runner) *Dataplane {
	if run == nil {
		run = ExecRunner
	}
	return &Dataplane{run: run, applied: map[corev1.IPFamily]appliedTable{}}
}

// Apply makes the kernel hold st, replacing only our own chains, jumps and sets:
//
//  1. ipset restore creates the sets st needs and the kernel lacks (sets are named by
//     content, so the others are already right);
//  2. per family, iptables-restore --noflush (ip6tables-restore) replaces our chains, fixes
//     the jumps from INPUT/FORWARD/OUTPUT and deletes our stale chains, atomically;
//  3. ipset restore destroys our sets no rule references any more.
//
// Applying the same State twice changes nothing the second time: iptables-save and ipset save
// print the same text, and when our jumps are still first no restore runs at all. After a
// first full restore, only the chains whose rules changed are rewritten (a pod added rewrites
// its chain, the top-level chains and the tail), so edits to an unchanged chain of ours by
// someone else last until that chain changes. Families absent from st are not
// touched (Cleanup removes them).
func (d *Dataplane) Apply(ctx context.Context, st State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sets []IPSet
	for _, rs := range st.Rulesets {
		sets = append(sets, rs.Sets...)
	}
	existing, err := d.setNames(ctx)
	if err != nil {
		return err
	}
	if text := renderIPSetCreate(sets, existing); text != "" {
		if _, err := d.run(ctx, text, "ipset", "restore"); err != nil {
			return fmt.Errorf("creating ipsets: %w", err)
		}
	}
	for _, rs := range st.Rulesets {
		if err := d.applyTable(ctx, rs); err != nil {
			return err
		}
	}
	// Read the names again: a leftover temporary set renamed in step 1 is gone now. Only sets
	// of the families just applied are swept: another family's chains may still use theirs.
	if existing, err = d.setNames(ctx); err != nil {
		return err
	}
	applied := map[corev1.IPFamily]bool{}
	for _, rs := range st.Rulesets {
		applied[rs.Family] = true
	}
	var stale []string
	for _, name := range staleSets(sets, existing) {
		if applied[setFamily(name)] {
			stale = append(stale, name)
		}
	}
	return d.destroySets(ctx, stale)
}

// Cleanup removes everything of ours from both families' filter tables and every set of
// ours, kube-router's included: what K3s should do when --disable-network-policy is set
// (spec §1.1). It is the shutdown decision written down: a stopped controller does not
// remove rules by itself (traffic stays enforced by the last state), only Cleanup does.
// Unlike `iptables-save | grep -v KUBE-ROUTER | iptables-restore`, which leaves the
// KUBE-POD-FW-* and KUBE-NWPLCY-* chains and all sets behind as unreferenced orphans, it
// leaves nothing.
func (d *Dataplane) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.applied)
	var errs []error
	for _, fam := range []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol} {
		save, restore := tools(fam)
		dump, err := d.run(ctx, "", save, "-t", "filter")
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the %s filter table: %w", fam, err))
			continue
		}
		if text := renderIPTablesCleanup(parseIPTablesSave(dump)); text != "" {
			if _, err := d.run(ctx, text, restore, "--noflush"); err != nil {
				errs = append(errs, fmt.Errorf("removing chains from the %s filter table: %w", fam, err))
			}
		}
	}
	existing, err := d.setNames(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var ours []string
	for _, name := range existing {
		if isOwnSet(name) {
			ours = append(ours, name)
		}
	}
	return errors.Join(append(errs, d.destroySets(ctx, ours))...)
}

// applyTable makes one family's filter table hold rs's chains.
func (d *Dataplane) applyTable(ctx context.Context, rs Ruleset) error {
	cur, prev, err := d.readTable(ctx, rs.Family)
	if err != nil {
		return err
	}
	delete(d.applied, rs.Family)
	if text := renderIPTables(rs, cur, prev); text != emptyRestore {
		_, restore := tools(rs.Family)
		if _, err := d.run(ctx, text, restore, "--noflush"); err != nil {
			return fmt.Errorf("restoring the %s filter table: %w", rs.Family, err)
		}
	}
	rules := make(map[string]string, len(rs.Chains))
	for _, ch := range rs.Chains {
		rules[ch.Name] = strings.Join(ch.Rules, "\n")
	}
	d.applied[rs.Family] = appliedTable{rules: rules}
	return nil
}

// readTable returns what a sync needs to know of a family's filter table, and the rules our
// chains hold when they are known. After a successful Apply only the three built-in chains
// are listed; if our jumps there are not exactly as we left them, someone edited the table
// (K3s's grep -v KUBE-ROUTER, say), so the cache is dropped and the whole table read.
func (d *Dataplane) readTable(ctx context.Context, fam corev1.IPFamily) (tableState, map[string]string, error) {
	save, _ := tools(fam)
	if prev, ok := d.applied[fam]; ok {
		list := strings.TrimSuffix(save, "-save")
		var dump strings.Builder
		dump.WriteString("*filter\n")
		for _, bc := range builtinChains() {
			out, err := d.run(ctx, "", list, "-t", "filter", "-S", bc[0])
			if err != nil {
				return tableState{}, nil, fmt.Errorf("listing the %s %s chain: %w", fam, bc[0], err)
			}
			dump.WriteString(out)
		}
		cur := parseIPTablesSave(dump.String())
		if reflect.DeepEqual(cur.jumps, ourJumps()) {
			for name := range prev.rules {
				cur.ownChains = append(cur.ownChains, name)
			}
			slices.Sort(cur.ownChains)
			return cur, prev.rules, nil
		}
	}
	dump, err := d.run(ctx, "", save, "-t", "filter")
	if err != nil {
		return tableState{}, nil, fmt.Errorf("reading the %s filter table: %w", fam, err)
	}
	return parseIPTablesSave(dump), nil, nil
}

// ourJumps is the jumps of a table where ours are each built-in chain's first rule.
func ourJumps() map[string][]builtinRule {
	m := map[string][]builtinRule{}
	for _, bc := range builtinChains() {
		m[bc[0]] = []builtinRule{{pos: 1, rule: jumpRule(bc[0], bc[1])}}
	}
	return m
}

// tools returns the save and restore binaries of a family.
func tools(fam corev1.IPFamily) (save, restore string) {
	if fam == corev1.IPv6Protocol {
		return "ip6tables-save", "ip6tables-restore"
	}
	return "iptables-save", "iptables-restore"
}

// setNames lists the ipsets in the kernel, sorted.
func (d *Dataplane) setNames(ctx context.Context) ([]string, error) {
	out, err := d.run(ctx, "", "ipset", "list", "-n")
	if err != nil {
		return nil, fmt.Errorf("listing ipsets: %w", err)
	}
	return parseSetNames(out), nil
}

// destroySets destroys names in one restore. A set something else still references cannot
// be destroyed (k0sproject/k0s#2261) and would stop the restore at that line, so on failure
// every set is retried alone and the failures are joined.
func (d *Dataplane) destroySets(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if _, err := d.run(ctx, renderIPSetDestroy(names), "ipset", "restore"); err == nil {
		return nil
	}
	left, err := d.setNames(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if _, found := slices.BinarySearch(left, name); !found {
			continue
		}
		if _, err := d.run(ctx, "", "ipset", "destroy", name); err != nil {
			errs = append(errs, fmt.Errorf("destroying ipset %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
