package netns

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Exec runs the command name with args inside the namespace (through `ip netns
// exec`) and returns its combined output. The error names the full command
// line, and carries the output so a failing iptables or ipset call explains
// itself.
func (n *Namespace) Exec(ctx context.Context, name string, args ...string) (string, error) {
	if n.path != "" {
		return run(ctx, "nsenter", append([]string{"--net=" + n.path, "--", name}, args...)...)
	}
	return run(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// ip runs `ip -n NAME args...`, which is cheaper than Exec because it switches
// namespace inside ip itself instead of exec'ing a second program.
func (n *Namespace) ip(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", append([]string{"-n", n.name}, args...)...)
	return err
}

// run runs a host command and returns its combined output, with an error that
// names the command line and quotes what it printed.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		line := strings.Join(append([]string{name}, args...), " ")
		if msg := bytes.TrimSpace(out); len(msg) > 0 {
			return string(out), fmt.Errorf("running %q: %w: %s", line, err, msg)
		}
		return string(out), fmt.Errorf("running %q: %w", line, err)
	}
	return string(out), nil
}
