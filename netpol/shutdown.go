package netpol

import (
	"context"
	"fmt"
)

// Cleanup removes every chain, jump and ipset of ours from the host, in both IP families,
// kube-router's leftovers included: what --disable-network-policy should do on each node,
// where K3s only documents `iptables-save | grep -v KUBE-ROUTER | iptables-restore`, which
// leaves the pod and policy chains and every ipset behind.
//
// It is the only way rules go away. A Controller whose context ends leaves them in place
// (see Controller): a node between two controller runs keeps enforcing the last state it
// knew rather than opening every pod to every peer. Do not run Cleanup while a Controller of
// the same host runs: its next sync puts everything back.
func Cleanup(ctx context.Context) error {
	if err := NewDataplane(nil).Cleanup(ctx); err != nil {
		return fmt.Errorf("netpol: cleanup: %w", err)
	}
	return nil
}
