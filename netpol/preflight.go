package netpol

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	corev1 "k8s.io/api/core/v1"
)

// ErrToolUnusable means a command the dataplane needs is missing or does not work (no
// permission, no kernel support). K3s checks ipset only and, when it fails, silently runs no
// NetworkPolicy controller at all; Start fails with it instead.
var ErrToolUnusable = errors.New("netpol: required tool unusable")

// ToolError is one tool that failed the preflight check. errors.Is(err, ErrToolUnusable)
// holds for it.
type ToolError struct {
	// Tool is the command, for example "ip6tables-restore".
	Tool string
	// Package is the distribution package that provides it.
	Package string
	// Missing is true when the command is not on PATH, false when it ran and failed.
	Missing bool
	// Err is the error of the failed run.
	Err error
}

// Error says which tool and what to do about it.
func (e *ToolError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%s is not installed (not on PATH): install the %s package", e.Tool, e.Package)
	}
	return fmt.Sprintf("%s does not work (it needs root or CAP_NET_ADMIN, and netfilter support in the kernel; install the %s package if it is broken): %v",
		e.Tool, e.Package, e.Err)
}

// Unwrap makes errors.Is(err, ErrToolUnusable) true, and keeps the run's error reachable.
func (e *ToolError) Unwrap() []error { return []error{ErrToolUnusable, e.Err} }

// toolCheck is one trial command of the preflight: cheap, read-only, and failing the same way
// a sync would if the tool is missing or not permitted.
type toolCheck struct {
	tool, pkg string
	stdin     string
	args      []string
}

// preflightChecks lists the trial commands for the families a sync will program: per family
// the listing, save and restore commands Dataplane runs, and ipset once. The restore is run
// with --test on an empty transaction, which needs the same permission as a real one and
// changes nothing.
func preflightChecks(families []corev1.IPFamily) []toolCheck {
	var checks []toolCheck
	for _, fam := range families {
		save, restore := tools(fam)
		list := "iptables"
		if fam == corev1.IPv6Protocol {
			list = "ip6tables"
		}
		checks = append(checks,
			toolCheck{tool: list, pkg: "iptables", args: []string{"-t", "filter", "-S", "INPUT"}},
			toolCheck{tool: save, pkg: "iptables", args: []string{"--version"}},
			toolCheck{tool: restore, pkg: "iptables", stdin: emptyRestore, args: []string{"--noflush", "--test"}},
		)
	}
	return append(checks, toolCheck{tool: "ipset", pkg: "ipset", args: []string{"list", "-n"}})
}

// preflight runs the checks for families through run and returns one ToolError per tool
// that failed, joined. A missing binary is told apart from a failing one by exec.ErrNotFound,
// which ExecRunner's error wraps.
func preflight(ctx context.Context, run Runner, families []corev1.IPFamily) error {
	var errs []error
	for _, c := range preflightChecks(families) {
		if _, err := run(ctx, input(c.stdin), c.tool, c.args...); err != nil {
			errs = append(errs, &ToolError{Tool: c.tool, Package: c.pkg, Missing: errors.Is(err, exec.ErrNotFound), Err: err})
		}
	}
	return errors.Join(errs...)
}

// Preflight checks that the commands Apply runs for families exist and work, so that a node
// without iptables or ipset fails at Start with a message naming the tool and its package,
// not at every sync.
func (d *Dataplane) Preflight(ctx context.Context, families []corev1.IPFamily) error {
	return preflight(ctx, d.run, families)
}
