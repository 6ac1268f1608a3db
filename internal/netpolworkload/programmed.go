package netpolworkload

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/k3snet/k3snet/netpol"
)

// Exec runs a command on the node under test and returns its standard output.
type Exec func(ctx context.Context, name string, args ...string) (string, error)

// ProgrammedPods returns how many IPv4 local pods have their NetworkPolicy rules in place on
// the node exec runs on: the entries of the set of programmed pods, which a pod joins only
// once its rules are live. A node without the set yet has none.
func ProgrammedPods(ctx context.Context, exec Exec) (int, error) {
	out, err := exec(ctx, "ipset", "list", "-t", netpol.ProgrammedPodsSet(corev1.IPv4Protocol))
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return 0, nil
		}
		return 0, err
	}
	for line := range strings.Lines(out) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "Number of entries:"); ok {
			return strconv.Atoi(strings.TrimSpace(n))
		}
	}
	return 0, fmt.Errorf("ipset list -t printed no number of entries: %q", out)
}
