package netpol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Runner runs the command name with args, feeding it stdin (nil: no input), and returns its
// standard output. Its error must describe a failed run, with the command's standard error.
// It must read stdin as the command does, not ahead of starting it: Apply streams an
// iptables-restore its rules while ipset fills the sets they name, and sends the final
// COMMIT only once that is done. A Runner whose context ends must stop the command.
type Runner func(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error)

// ExecRunner is the Runner that executes commands on the host.
func ExecRunner(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Dataplane programs a State into the kernel with ipset and iptables-restore. It is the one
// place that talks to the kernel; it keeps no state between calls, so every Apply
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
	// names and members remember the sets in the kernel and the entries of our hash:ip sets
	// as the last successful Apply left them, so the next one neither lists the sets nor
	// reads every set back; nil when unknown. Caches like applied: a set someone else
	// creates or destroys under one of our names fails the next restore, which drops them;
	// a set whose members someone else edits stays wrong until ForgetApplied.
	names   []string
	members map[string][]string
	// plainRestore is set once the host's iptables-nft-restore refused a restore with the
	// listing shortcut (listAllLine) and took it without: a version we have not seen, which
	// is not offered the shortcut again.
	plainRestore bool
}

// appliedTable is what one successful Apply left in a family's filter table.
type appliedTable struct {
	// rules maps each of our chains to its rules, the applied State's own slices (a State is
	// never changed once compiled), so remembering them copies no rule.
	rules map[string][]string
	// chains is the applied Ruleset's own list. A compile that changes no chain returns the
	// same list, which is then known to be in place without a look at any chain.
	chains []Chain
}

// sameList reports whether a and b are the same list (not merely equal ones).
func sameList(a, b []Chain) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
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
//  1. ipset restore creates the sets st needs and the kernel lacks, and adds and deletes the
//     members that changed in the others (a pod event touches a few members, not the sets'
//     names, so no rule that uses them changes);
//  2. per family, iptables-restore --noflush (ip6tables-restore) replaces our chains, fixes
//     the jumps from INPUT/FORWARD/OUTPUT and deletes our stale chains, atomically;
//  3. ipset restore adds the newly programmed local pods to the set the tail lets through,
//     now that their groups' chains exist (IPSet.AddLast), and takes pods out of the groups
//     they left (IPSet.DeleteLast);
//  4. ipset restore destroys our sets no rule references any more.
//
// Applying the same State twice changes nothing the second time: iptables-save and ipset save
// print the same text, and when our jumps are still first no restore runs at all. After a
// first full restore, only what changed is written: a pod added to the workload of record
// beside others of its kind adds its address to the sets it belongs to, its groups' included,
// and no iptables-restore runs; a pod that makes a new group creates the group's chain and
// inserts its jumps in the top-level chains (ruleEdits). Edits by someone else to an
// unchanged chain or set of ours last until that chain changes or ForgetApplied is called
// (the controller does before each drift-repair sync); an edit that makes one of our
// restores fail drops the caches, and the next Apply reads the kernel and rewrites. Families
// absent from st are not touched (Cleanup removes them).
func (d *Dataplane) Apply(ctx context.Context, st State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sets []IPSet
	for _, rs := range st.Rulesets {
		sets = append(sets, rs.Sets...)
	}
	existing := d.names
	if existing == nil {
		var err error
		if existing, err = d.setNames(ctx); err != nil {
			return err
		}
	}
	members, err := d.setMembers(ctx, sets, existing)
	if err != nil {
		return err
	}
	// Unknown until this Apply succeeds: a failed restore may have applied part of its lines.
	d.names, d.members = nil, nil
	var refs map[string]int
	if fresh := newSetNames(sets, existing); len(fresh) > 1 {
		refs = setReferences(st, fresh)
	}
	restores := renderIPSetUpdate(sets, existing, members, refs)
	if restores.create != "" {
		if _, err := d.run(ctx, input(restores.create), "ipset", "restore"); err != nil {
			return fmt.Errorf("creating ipsets: %w", err)
		}
	}
	// The fill runs beside the first iptables-restore, which spends most of its time reading
	// rules (at 10× the workload of record, 1.2 of 1.9 s) and commits only after the fill.
	filled := d.runAside(ctx, restores.fill, "ipset", "restore")
	err = d.applyTables(ctx, st, filled)
	if err := filled(); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	if restores.after != "" {
		if _, err := d.run(ctx, input(restores.after), "ipset", "restore"); err != nil {
			return fmt.Errorf("updating the ipsets of programmed local pods and pod groups: %w", err)
		}
	}
	// Only sets of the families just applied are swept: another family's chains may still use
	// theirs. The names are not listed again (a listing costs as much as the rest of a small
	// sync): step 1 only renamed leftover temporary sets away, which setsAfterCreate knows.
	existing = setsAfterCreate(sets, existing)
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
	if err := d.destroySets(ctx, stale); err != nil {
		return err
	}
	d.names = slices.DeleteFunc(existing, func(name string) bool { return slices.Contains(stale, name) })
	d.members = map[string][]string{}
	for _, s := range sets {
		if s.Type == setTypeIP {
			d.members[s.Name] = s.Entries
		}
	}
	return nil
}

// setMembers returns the current members of the hash:ip sets of sets that exist in the
// kernel: what the last successful Apply left when it knows them all, else what `ipset save`
// prints (after a restart or a failure; the save costs about as much as the sync itself).
func (d *Dataplane) setMembers(ctx context.Context, sets []IPSet, existing []string) (map[string][]string, error) {
	known := true
	for _, s := range sets {
		if _, found := slices.BinarySearch(existing, s.Name); found && s.Type == setTypeIP {
			if _, ok := d.members[s.Name]; !ok {
				known = false
				break
			}
		}
	}
	if known {
		return d.members, nil
	}
	out, err := d.run(ctx, nil, "ipset", "save")
	if err != nil {
		return nil, fmt.Errorf("reading ipset members: %w", err)
	}
	return parseIPSetSave(out), nil
}

// ForgetApplied drops what the Dataplane remembers of its last Apply, so the next Apply reads
// our chains and sets back in full and rewrites whatever differs from its State: drift repair
// for rules or set members someone else changed, which an Apply from the caches does not see.
// That Apply costs a full table read (iptables-save), as the first one does.
func (d *Dataplane) ForgetApplied() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked()
}

func (d *Dataplane) forgetLocked() {
	clear(d.applied)
	d.names, d.members = nil, nil
}

// Cleanup removes everything of ours from both families' filter tables and every set of
// ours, kube-router's included: what K3s should do when --disable-network-policy is set
// (K3s itself leaves them). It is the shutdown decision written down: a stopped controller does not
// remove rules by itself (traffic stays enforced by the last state), only Cleanup does.
// Unlike `iptables-save | grep -v KUBE-ROUTER | iptables-restore`, which leaves the
// KUBE-POD-FW-* and KUBE-NWPLCY-* chains and all sets behind as unreferenced orphans, it
// leaves nothing.
func (d *Dataplane) Cleanup(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked()
	var errs []error
	for _, fam := range []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol} {
		save, restore := tools(fam)
		dump, err := d.run(ctx, nil, save, "-t", "filter")
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the %s filter table: %w", fam, err))
			continue
		}
		if text := renderIPTablesCleanup(parseIPTablesSave(dump)); text != "" {
			if _, err := d.run(ctx, input(text), restore, "--noflush"); err != nil {
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

// applyTables applies each Ruleset of st in turn (applyTable).
func (d *Dataplane) applyTables(ctx context.Context, st State, ready func() error) error {
	for _, rs := range st.Rulesets {
		if err := d.applyTable(ctx, rs, ready); err != nil {
			return err
		}
	}
	return nil
}

// applyTable makes one family's filter table hold rs's chains, committing them only once
// ready returns nil.
func (d *Dataplane) applyTable(ctx context.Context, rs Ruleset, ready func() error) error {
	cur, prev, err := d.readTable(ctx, rs.Family)
	if err != nil {
		return err
	}
	if prev != nil && sameList(d.applied[rs.Family].chains, rs.Chains) {
		// A pod event that only moves addresses between sets (16,000 chains at 10×).
		return nil
	}
	if prev != nil {
		cur.ownChains = slices.Sorted(maps.Keys(prev))
	}
	delete(d.applied, rs.Family)
	cur.nft = cur.nft && !d.plainRestore
	if text := renderIPTables(rs, cur, prev); text != emptyRestore {
		_, restore := tools(rs.Family)
		if _, err := d.runCommittingAfter(ctx, ready, text, restore, "--noflush"); err != nil {
			if errors.Is(err, errNotReady) {
				return err
			}
			if !d.restoreWithoutShortcut(ctx, rs, cur, prev, text, ready) {
				return fmt.Errorf("restoring the %s filter table: %w", rs.Family, err)
			}
		}
	}
	rules := make(map[string][]string, len(rs.Chains))
	for _, ch := range rs.Chains {
		rules[ch.Name] = ch.Rules
	}
	d.applied[rs.Family] = appliedTable{rules: rules, chains: rs.Chains}
	return nil
}

// restoreWithoutShortcut retries, without the listing shortcut, a restore that failed with it,
// and reports whether that succeeded. A restore is one transaction, so the failed one changed
// nothing. Only iptables-nft 1.8.9 is known to take the shortcut; an iptables that refuses it
// gets its rules in the same sync, from this second restore, and is not offered it again.
func (d *Dataplane) restoreWithoutShortcut(ctx context.Context, rs Ruleset, cur tableState, prev map[string][]string, failed string, ready func() error) bool {
	if !cur.nft {
		return false
	}
	cur.nft = false
	text := renderIPTables(rs, cur, prev)
	if text == failed {
		return false
	}
	_, restore := tools(rs.Family)
	if _, err := d.runCommittingAfter(ctx, ready, text, restore, "--noflush"); err != nil {
		return false
	}
	d.plainRestore = true
	klog.FromContext(ctx).Info("iptables-restore refused the chain listing that speeds up a full rewrite on nf_tables; restoring without it from now on", "family", rs.Family)
	return true
}

// readTable returns what a sync needs to know of a family's filter table, and the rules our
// chains hold when they are known. After a successful Apply only the three built-in chains
// are listed; if our jumps there are not exactly as we left them, someone edited the table
// (K3s's grep -v KUBE-ROUTER, say), so the cache is dropped and the whole table read.
func (d *Dataplane) readTable(ctx context.Context, fam corev1.IPFamily) (tableState, map[string][]string, error) {
	save, _ := tools(fam)
	if prev, ok := d.applied[fam]; ok {
		list := strings.TrimSuffix(save, "-save")
		var dump strings.Builder
		dump.WriteString("*filter\n")
		for _, bc := range builtinChains() {
			out, err := d.run(ctx, nil, list, "-t", "filter", "-S", bc[0])
			if err != nil {
				return tableState{}, nil, fmt.Errorf("listing the %s %s chain: %w", fam, bc[0], err)
			}
			dump.WriteString(out)
		}
		cur := parseIPTablesSave(dump.String())
		if reflect.DeepEqual(cur.jumps, ourJumps()) {
			return cur, prev.rules, nil // applyTable lists our chains when it needs them
		}
	}
	dump, err := d.run(ctx, nil, save, "-t", "filter")
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
	out, err := d.run(ctx, nil, "ipset", "list", "-n")
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
	if _, err := d.run(ctx, input(renderIPSetDestroy(names)), "ipset", "restore"); err == nil {
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
		if _, err := d.run(ctx, nil, "ipset", "destroy", name); err != nil {
			errs = append(errs, fmt.Errorf("destroying ipset %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// input is text as a command's standard input; nil when there is none.
func input(text string) io.Reader {
	if text == "" {
		return nil
	}
	return strings.NewReader(text)
}

// errNotReady marks the error of a restore whose commit waited on a command that failed.
var errNotReady = errors.New("not committed")

// runAside runs the restore of text (when there is one) through d.run on a goroutine of its
// own, and returns what waits for its end and reports its error.
func (d *Dataplane) runAside(ctx context.Context, text, name string, args ...string) func() error {
	if text == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		_, err := d.run(ctx, input(text), name, args...)
		if err != nil {
			err = fmt.Errorf("updating ipset members: %w", err)
		}
		done <- err
	}()
	return sync.OnceValue(func() error { return <-done })
}

// runCommittingAfter runs a restore of text, which ends with its COMMIT line, through d.run,
// streaming it everything but that line at once and the line only once ready returns nil. If
// ready fails, the restore is stopped before it reads a COMMIT, so it changes nothing, and
// the error wraps ready's and errNotReady.
func (d *Dataplane) runCommittingAfter(ctx context.Context, ready func() error, text, name string, args ...string) (string, error) {
	body, ok := strings.CutSuffix(text, "COMMIT\n")
	if !ok {
		return "", fmt.Errorf("%s input does not end with COMMIT", name)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	r, w := io.Pipe()
	var readyErr error
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		if _, err := io.WriteString(w, body); err != nil {
			return // the command stopped reading: it failed, and says why
		}
		if readyErr = ready(); readyErr != nil {
			stop() // before the input ends, so the command sees no end of input to act on
			w.CloseWithError(readyErr)
			return
		}
		_, _ = io.WriteString(w, "COMMIT\n")
		_ = w.Close()
	}()
	out, err := d.run(ctx, r, name, args...)
	_ = r.Close() // a command that failed early no longer reads: unblock the writer
	<-fed
	if readyErr != nil {
		return "", fmt.Errorf("%s stopped before its commit: %w: %w", name, errNotReady, readyErr)
	}
	return out, err
}
