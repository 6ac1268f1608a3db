package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requiredTools lists the commands dataplane tests shell out to. ip builds the
// namespaces; the others are what the code under test runs inside them.
func requiredTools() []string {
	return []string{"ip", "iptables", "ip6tables", "ipset", "conntrack"}
}

// Require skips t, naming exactly what is missing, unless the process runs as
// root and finds ip, iptables, ip6tables, ipset and conntrack on PATH.
// hack/setup.sh installs the tools. Under CI (CI set) a missing prerequisite fails the
// test instead: CI has them, so a skip there would hide missing work.
func Require(t testing.TB) {
	t.Helper()
	if err := CheckPrerequisites(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dataplane test cannot run: %v", err)
		}
		t.Skipf("skipping dataplane test: %v", err)
	}
}

// CheckPrerequisites returns an error naming what is missing when the process
// cannot build namespaces: not root, or which required tools are not on PATH.
// It is Require for callers without a testing.TB.
func CheckPrerequisites() error {
	return prerequisiteProblem(os.Geteuid(), exec.LookPath)
}

// prerequisiteProblem is CheckPrerequisites with the environment passed in, so
// the message can be table-tested without changing the process.
func prerequisiteProblem(euid int, lookPath func(string) (string, error)) error {
	var problems []string
	if euid != 0 {
		problems = append(problems, fmt.Sprintf("not root (effective uid %d)", euid))
	}
	var missing []string
	for _, tool := range requiredTools() {
		if _, err := lookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "not on PATH: "+strings.Join(missing, ", "))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("netns prerequisites: %s", strings.Join(problems, "; "))
}
