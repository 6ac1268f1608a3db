package forwarder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// Options tune a Forwarder. The zero value does what the klipper-lb script does.
type Options struct {
	// Backend forces the iptables backend. Empty detects it as the script does:
	// nft when the kernel has nf_tables loaded, legacy otherwise.
	Backend Backend
}

// Validate reports a bad option.
func (o Options) Validate() error {
	switch o.Backend {
	case "", BackendNFT, BackendLegacy:
		return nil
	}
	return fmt.Errorf("forwarder options: backend %q is not %q or %q", o.Backend, BackendNFT, BackendLegacy)
}

// iptablesRunner is the part of go-iptables' *iptables.IPTables the forwarder uses,
// for one family. It is the one place the forwarder touches the kernel.
type iptablesRunner interface {
	ChainExists(table, chain string) (bool, error)
	ClearChain(table, chain string) error
	List(table, chain string) ([]string, error)
	Append(table, chain string, rulespec ...string) error
	Exists(table, chain string, rulespec ...string) (bool, error)
	Insert(table, chain string, pos int, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	ClearAndDeleteChain(table, chain string) error
}

// host is what the forwarder observes and programs. hostSystem is the real one;
// tests substitute facts and an in-memory iptables.
type host interface {
	forwarding(fam Family) (forwarding, error)
	backendFacts(fams []Family) (backendFacts, error)
	iptables(fam Family, command string) (iptablesRunner, error)
}

// Forwarder installs and removes one LB port's forwarding rules in the network
// namespace it runs in: the LB pod's. It is not safe for concurrent use.
type Forwarder struct {
	// cfg is what to forward, validated.
	cfg Config
	// backend is Options.Backend: forced, or "" to detect.
	backend Backend
	// host observes sysctls and commands and makes iptables runners.
	host host
	// installed is what Apply programmed, by family, so Cleanup removes exactly
	// that even after a partial failure.
	installed map[Family]installedFamily
}

// installedFamily is a family's rules and the runner they were installed with.
type installedFamily struct {
	rules familyRules
	ipt   iptablesRunner
}

// New returns a Forwarder for cfg, or an error naming every bad field or option.
// It touches nothing; Apply and Run do. New copies cfg's lists, masks its ranges and
// sorts both lists, as ConfigFromEnv does.
func New(cfg Config, opts Options) (*Forwarder, error) {
	if err := errors.Join(cfg.Validate(), opts.Validate()); err != nil {
		return nil, fmt.Errorf("creating forwarder: %w", err)
	}
	return newForwarder(cfg, opts, hostSystem{procDir: "/proc"}), nil
}

// newForwarder is New without validation, with the host injected. It keeps its own
// normalized copy of cfg, so a caller changing its slices later changes nothing.
func newForwarder(cfg Config, opts Options, h host) *Forwarder {
	return &Forwarder{cfg: cfg.normalized(), backend: opts.Backend, host: h, installed: map[Family]installedFamily{}}
}

// Run applies the rules, waits for ctx to end (SIGTERM in the binary), then removes
// them and returns Cleanup's error. If Apply fails, Run removes what Apply had
// installed at once and returns both errors, so a restarted container starts clean.
//
// Removing on exit is a decision: the script never cleans up, because its rules die
// with the pod's netns. But a container restarted inside a living pod would leave
// the old rules forwarding with nobody in charge of them; removing them makes the
// netns match the container's state, and Apply puts them back on start.
func (f *Forwarder) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if err := f.Apply(ctx); err != nil {
		return errors.Join(err, f.Cleanup(context.WithoutCancel(ctx)))
	}
	<-ctx.Done()
	logger.Info("Stopping, removing forwarding rules", "cause", context.Cause(ctx))
	return f.Cleanup(context.WithoutCancel(ctx))
}

// Apply installs the forwarding rules for every family that has a destination, a
// source range and forwarding on, and logs why it skips the others. It is
// idempotent: rules already in place are left alone, so a second Apply writes
// nothing, and a chain that differs is replaced whole. A family Apply installed
// before and now skips is removed.
func (f *Forwarder) Apply(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("protocol", f.cfg.Proto, "port", f.cfg.SrcPort)

	fwd := map[Family]forwarding{}
	for _, fam := range families() {
		state, err := f.host.forwarding(fam)
		if err != nil {
			return fmt.Errorf("applying forwarding rules: %w", err)
		}
		fwd[fam] = state
	}
	install, skipped := plan(f.cfg, fwd)

	var errs []error
	for _, s := range skipped {
		kv := []any{"family", s.family, "reason", s.reason.String()}
		if s.reason == skipForwardingOff || s.reason == skipFamilyDisabled {
			kv = append(kv, "sysctl", strings.ReplaceAll(forwardingSysctl(s.family), "/", "."))
		}
		logger.Info("Not forwarding this family", kv...)
		if old, ok := f.installed[s.family]; ok {
			errs = append(errs, f.remove(ctx, old))
		}
	}
	if len(install) == 0 {
		logger.Info("Nothing to forward, waiting to be stopped")
		return errors.Join(errs...)
	}

	fams := make([]Family, 0, len(install))
	for _, fr := range install {
		fams = append(fams, fr.family)
	}
	facts, err := f.host.backendFacts(fams)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("detecting iptables backend: %w", err))...)
	}
	backend, why := f.backend, "set in options"
	if backend == "" {
		backend, why = chooseBackend(facts)
	}
	logger.Info("Using iptables backend", "backend", backend, "reason", why)

	for _, fr := range install {
		errs = append(errs, f.applyFamily(ctx, backend, facts, fr))
	}
	return errors.Join(errs...)
}

// applyFamily installs one family's rules with the command of backend.
func (f *Forwarder) applyFamily(ctx context.Context, backend Backend, facts backendFacts, fr familyRules) error {
	logger := klog.FromContext(ctx).WithValues("protocol", f.cfg.Proto, "port", f.cfg.SrcPort, "family", fr.family)
	command, err := chooseCommand(fr.family, backend, facts.commands)
	if err != nil {
		return fmt.Errorf("applying %s forwarding rules: %w", fr.family, err)
	}
	ipt, err := f.host.iptables(fr.family, command)
	if err != nil {
		return fmt.Errorf("applying %s forwarding rules: %w", fr.family, err)
	}
	ipt = retrying{ipt: ipt}
	// Recorded before the first write, so Cleanup also undoes a partial install.
	f.installed[fr.family] = installedFamily{rules: fr, ipt: ipt}

	writes, err := install(ipt, fr)
	if err != nil {
		return fmt.Errorf("applying %s forwarding rules with %s: %w", fr.family, command, err)
	}
	if writes == 0 {
		logger.V(2).Info("Forwarding rules already in place", "command", command)
	}
	logger.Info("Forwarding", "command", command, "sourceRanges", f.cfg.sourceRanges(fr.family),
		"destinations", f.cfg.destinations(fr.family), "destinationPort", f.cfg.DestPort, "writes", writes)
	return nil
}

// Cleanup removes every rule and chain Apply installed, and nothing else: its jumps
// are deleted by their exact specification and its chains by name. It tries every
// family and returns their errors joined.
func (f *Forwarder) Cleanup(ctx context.Context) error {
	var errs []error
	for _, fam := range families() {
		if inst, ok := f.installed[fam]; ok {
			errs = append(errs, f.remove(ctx, inst))
		}
	}
	return errors.Join(errs...)
}

// remove uninstalls one family and forgets it. A family that failed to uninstall
// is remembered, so the next Cleanup tries again.
func (f *Forwarder) remove(ctx context.Context, inst installedFamily) error {
	logger := klog.FromContext(ctx).WithValues("protocol", f.cfg.Proto, "port", f.cfg.SrcPort, "family", inst.rules.family)
	if err := uninstall(inst.ipt, inst.rules); err != nil {
		return fmt.Errorf("removing %s forwarding rules: %w", inst.rules.family, err)
	}
	delete(f.installed, inst.rules.family)
	logger.Info("Removed forwarding rules")
	return nil
}

// install programs fr through ipt and returns how many writes it made. Chains are
// filled before the jumps into them exist, and the jumps go in filter first and DNAT
// last (newFamilyRules), so no packet is DNATed before its source is checked.
func install(ipt iptablesRunner, fr familyRules) (int, error) {
	writes := 0
	for _, c := range fr.chains {
		n, err := syncChain(ipt, c)
		writes += n
		if err != nil {
			return writes, err
		}
	}
	for _, j := range fr.jumps {
		args := j.args()
		ok, err := ipt.Exists(j.table, j.chain, args...)
		if err != nil {
			return writes, fmt.Errorf("checking jump in %s/%s: %w", j.table, j.chain, err)
		}
		if ok {
			continue
		}
		// At the top, as klipper-lb's entry script inserts its ACCEPT, DNAT and MASQUERADE,
		// so rules already in the pod's netns cannot shadow them.
		if err := ipt.Insert(j.table, j.chain, 1, args...); err != nil {
			return writes, fmt.Errorf("inserting jump in %s/%s: %w", j.table, j.chain, err)
		}
		writes++
	}
	return writes, nil
}

// syncChain makes one of the forwarder's chains hold exactly c's rules. A chain that
// already lists them is left untouched, so a restart writes nothing and resets no
// counters; otherwise it is flushed and refilled. The refill leaves the chain empty
// for a moment, which only matters when something else changed it: a pod's
// environment, and so the rules, never change while its netns lives.
func syncChain(ipt iptablesRunner, c chainRules) (int, error) {
	table, name := c.chain.table, c.chain.name
	exists, err := ipt.ChainExists(table, name)
	if err != nil {
		return 0, fmt.Errorf("checking chain %s/%s: %w", table, name, err)
	}
	if exists {
		listed, err := ipt.List(table, name)
		if err != nil {
			return 0, fmt.Errorf("listing chain %s/%s: %w", table, name, err)
		}
		if slices.Equal(appendLines(listed), c.listing()) {
			return 0, nil
		}
	}
	if err := ipt.ClearChain(table, name); err != nil {
		return 0, fmt.Errorf("creating chain %s/%s: %w", table, name, err)
	}
	writes := 1
	for _, r := range c.rules {
		if err := ipt.Append(table, name, r.args()...); err != nil {
			return writes, fmt.Errorf("appending to chain %s/%s: %w", table, name, err)
		}
		writes++
	}
	return writes, nil
}

// uninstall removes fr's jumps, DNAT first, then its chains. A jump found twice
// (two starts racing) is deleted until none is left. Every step is tried; the
// errors come back joined.
func uninstall(ipt iptablesRunner, fr familyRules) error {
	var errs []error
	for _, j := range slices.Backward(fr.jumps) {
		if err := deleteAll(ipt, j); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range slices.Backward(fr.chains) {
		if err := ipt.ClearAndDeleteChain(c.chain.table, c.chain.name); err != nil {
			errs = append(errs, fmt.Errorf("deleting chain %s/%s: %w", c.chain.table, c.chain.name, err))
		}
	}
	return errors.Join(errs...)
}

// maxDuplicates bounds deleteAll, so a runner that claims a rule exists after
// deleting it cannot loop forever.
const maxDuplicates = 16

// deleteAll deletes every copy of rule j.
func deleteAll(ipt iptablesRunner, j rule) error {
	args := j.args()
	for range maxDuplicates {
		ok, err := ipt.Exists(j.table, j.chain, args...)
		if err != nil {
			return fmt.Errorf("checking jump in %s/%s: %w", j.table, j.chain, err)
		}
		if !ok {
			return nil
		}
		if err := ipt.Delete(j.table, j.chain, args...); err != nil {
			return fmt.Errorf("deleting jump in %s/%s: %w", j.table, j.chain, err)
		}
	}
	return fmt.Errorf("deleting jump in %s/%s: still present after %d deletions", j.table, j.chain, maxDuplicates)
}

// appendLines keeps the -A lines of a chain listing, dropping its -N or -P line.
func appendLines(listed []string) []string {
	out := make([]string, 0, len(listed))
	for _, l := range listed {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out
}
