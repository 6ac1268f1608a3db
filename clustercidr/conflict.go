package clustercidr

import (
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// conflictOutcome is what assign does after its conditional patch met a newer version of the
// Node (Conflict), judged from the fresh Node alone.
type conflictOutcome int

const (
	// conflictRetry: the fresh Node still has no CIDRs and the same labels; the reserved
	// block is patched onto the fresh version.
	conflictRetry conflictOutcome = iota
	// conflictRechoose: the labels changed, and labels decide the ClusterCIDR: the block is
	// released and the allocator chooses again for the fresh Node.
	conflictRechoose
	// conflictSameCIDRs: another writer gave the Node exactly the reserved block (an earlier
	// patch of ours that timed out, most likely); the allocator keeps holding it.
	conflictSameCIDRs
	// conflictOtherAllocator: another writer gave the Node other CIDRs: ours go back, theirs
	// are occupied, and the allocator is rebuilt from the API, which knows what else that
	// writer handed out.
	conflictOtherAllocator
	// conflictFreshUnusable: the fresh Node carries CIDRs that cannot be held (freshErr from
	// nodeFromAPI): ours go back and the Node gets a Warning.
	conflictFreshUnusable
)

// afterConflict decides what follows a Conflict on assigning reserved to the Node asked, from
// the fresh Node (nodeFromAPI's result and error).
func afterConflict(asked Node, reserved []netip.Prefix, fresh Node, freshErr error) conflictOutcome {
	switch {
	case freshErr != nil:
		return conflictFreshUnusable
	case len(fresh.PodCIDRs) > 0 && slices.Equal(fresh.PodCIDRs, reserved):
		return conflictSameCIDRs
	case len(fresh.PodCIDRs) > 0:
		return conflictOtherAllocator
	case !labels.Equals(fresh.Labels, asked.Labels):
		return conflictRechoose
	default:
		return conflictRetry
	}
}
