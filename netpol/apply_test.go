package netpol

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestApplyAddsLocalPodToTailSetAfterItsChain applies a state, then the same with one more
// local pod, twice, and checks the order of the commands: the pod joins its groups' sets, and
// a new group's chain and jumps are restored, before its address joins the set the tail chain
// lets through, so no packet can reach the pod between the two (issue 4: a new pod is never
// reachable before it is programmed). A pod beside others of its kind changes set members
// only: no iptables-restore runs and no set is created. A pod that makes a new group creates
// the group's set and chain, and edits the top-level chains in place.
func TestApplyAddsLocalPodToTailSetAfterItsChain(t *testing.T) {
	kernel := &fakeKernel{}
	// The built-in chains list our jumps first, as the first Apply left them.
	dp := NewDataplane(func(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
		out, err := kernel.run(ctx, stdin, name, args...)
		if name == "iptables" && len(args) == 4 && args[2] == "-S" {
			for _, bc := range builtinChains() {
				if bc[0] == args[3] {
					out = "-P " + bc[0] + " ACCEPT\n-A " + bc[0] + " " + jumpRule(bc[0], bc[1]) + "\n"
				}
			}
		}
		return out, err
	})
	deny := makePolicy("x", "deny", ingressRules())
	in := Input{NodeName: nodeName, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24")},
		Namespaces: []*corev1.Namespace{makeNamespace("x"), makeNamespace("y")}, Policies: []*networkingv1.NetworkPolicy{deny},
		Pods: []*corev1.Pod{makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5"))}}
	st, err := Compile(in)
	require.NoError(t, err)
	require.NoError(t, dp.Apply(t.Context(), st))
	localPods := ProgrammedPodsSet(corev1.IPv4Protocol)

	// x/b: the same policies select it as x/a.
	first := kernel.count()
	in.Pods = append(in.Pods, makePod("x", "b", onNode(nodeName), withIPs("10.42.0.6")))
	st, err = Compile(in)
	require.NoError(t, err)
	require.NoError(t, dp.Apply(t.Context(), st))
	calls := kernel.calls[first:]
	assert.False(t, slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "iptables-restore ") }),
		"a pod that joins existing groups needs no iptables-restore: %q", calls)
	joins := regexp.MustCompile(`^ipset restore\nadd KUBE-DST-\w+ 10\.42\.0\.6\nadd KUBE-SRC-\w+ 10\.42\.0\.6\n$`)
	assert.True(t, slices.ContainsFunc(calls[:len(calls)-1], joins.MatchString), "it joins its ingress and egress groups first: %q", calls)
	assert.Equal(t, "ipset restore\nadd "+localPods+" 10.42.0.6\n", calls[len(calls)-1], "the last command adds the pod to the programmed set")

	// y/c: no policy of y selects it, and no pod had its ingress group.
	first = kernel.count()
	in.Pods = append(in.Pods, makePod("y", "c", onNode(nodeName), withIPs("10.42.0.7")))
	st, err = Compile(in)
	require.NoError(t, err)
	require.NoError(t, dp.Apply(t.Context(), st))
	calls = kernel.calls[first:]
	restore := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "iptables-restore ") })
	require.NotEqual(t, -1, restore, "the new group's chain is restored: %q", calls)
	inSet := podGroupSetName(corev1.IPv4Protocol, dirIngress, groupChain(corev1.IPv4Protocol, dirIngress))
	for _, c := range calls[:restore] {
		assert.NotContains(t, c, localPods, "before the rules, the new local pod may not join the set that lets it through the tail")
	}
	assert.True(t, slices.ContainsFunc(calls[:restore], func(c string) bool {
		return strings.HasPrefix(c, "ipset restore\ncreate "+inSet+" ")
	}), "the new group's set is made before the rules: %q", calls)
	assert.True(t, slices.ContainsFunc(calls[:restore], func(c string) bool {
		return strings.Contains(c, "add "+inSet+" 10.42.0.7\n")
	}), "the new pod is in it before the rules commit: %q", calls)
	assert.Equal(t, "ipset restore\nadd "+localPods+" 10.42.0.7\n", calls[len(calls)-1], "the last command adds the pod to the programmed set")
	assert.NotContains(t, calls[restore], ":KUBE-ROUTER-FORWARD ", "the top-level chains are edited in place, not rewritten")
	assert.Contains(t, calls[restore], "-I KUBE-ROUTER-FORWARD ")
	assert.Contains(t, calls[restore], "-m set --match-set "+inSet+" dst -j "+groupChain(corev1.IPv4Protocol, dirIngress)+"\n")
}

// TestApplyRestoresWithoutTheListingShortcutWhereRefused: an iptables-nft-restore that
// refuses the listing line of a full rewrite still gets the rules, in a second restore
// without it, and is not offered the line again; when the restore fails for another reason,
// Apply says so.
func TestApplyRestoresWithoutTheListingShortcutWhereRefused(t *testing.T) {
	for _, tt := range []struct {
		name         string
		refuse       func(stdin string) bool
		wantErr      bool
		wantRestores int
	}{
		{name: "refused listing", refuse: func(stdin string) bool { return strings.Contains(stdin, "\n"+listAllLine) }, wantRestores: 2},
		{name: "every restore fails", refuse: func(string) bool { return true }, wantErr: true, wantRestores: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var restores []string
			dp := NewDataplane(func(_ context.Context, input io.Reader, name string, args ...string) (string, error) {
				stdin, err := readInput(input)
				if err != nil {
					return "", err
				}
				switch name {
				case "iptables-save":
					return "# Generated by iptables-save v1.8.9 (nf_tables) on Thu Dec  3 17:00:00 2026\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n", nil
				case "iptables-restore":
					restores = append(restores, stdin)
					if tt.refuse(stdin) {
						return "", errors.New("iptables-restore: line 5 failed")
					}
				}
				return "", nil
			})
			st := denyOneLocalPod(t)
			err := dp.Apply(t.Context(), st)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			require.Len(t, restores, tt.wantRestores)
			assert.Contains(t, restores[0], "\n"+listAllLine, "a full rewrite on nf_tables lists the table")
			assert.NotContains(t, restores[1], "\n"+listAllLine)

			// The next full rewrite offers the listing again only if it was not what failed.
			dp.ForgetApplied()
			restores = nil
			_ = dp.Apply(t.Context(), st)
			require.NotEmpty(t, restores)
			assert.Equal(t, tt.wantErr, strings.Contains(restores[0], "\n"+listAllLine))
		})
	}
}

// TestRestoreCommitsOnlyOnceReady streams a restore and checks that its COMMIT line comes
// only after ready returned nil, and never when ready fails: the iptables-restore that runs
// beside the ipset fill must not put rules in place that name sets still being filled.
func TestRestoreCommitsOnlyOnceReady(t *testing.T) {
	const body = "*filter\n-A KUBE-ROUTER-INPUT -j RETURN\n"
	for _, tt := range []struct {
		name     string
		readyErr error
	}{
		{name: "ready"},
		{name: "not ready", readyErr: errors.New("ipset restore: line 7: the kernel says no")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var returned atomic.Bool
			ready := func() error {
				<-release
				returned.Store(true)
				return tt.readyErr
			}
			var lines []string
			var readErr error
			var commitBeforeReady bool
			dp := NewDataplane(func(_ context.Context, stdin io.Reader, name string, args ...string) (string, error) {
				r := bufio.NewReader(stdin)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						readErr = err
						return "", err
					}
					lines = append(lines, line)
					switch line {
					case "-A KUBE-ROUTER-INPUT -j RETURN\n":
						close(release) // the whole body is read: let ready return
					case "COMMIT\n":
						commitBeforeReady = !returned.Load()
						return "", nil
					}
				}
			})
			_, err := dp.runCommittingAfter(t.Context(), ready, body+"COMMIT\n", "iptables-restore", "--noflush")
			if tt.readyErr == nil {
				require.NoError(t, err)
				assert.Equal(t, []string{"*filter\n", "-A KUBE-ROUTER-INPUT -j RETURN\n", "COMMIT\n"}, lines)
				assert.False(t, commitBeforeReady, "COMMIT came before ready returned")
				return
			}
			require.ErrorIs(t, err, errNotReady)
			require.ErrorIs(t, err, tt.readyErr)
			assert.NotContains(t, lines, "COMMIT\n")
			assert.Error(t, readErr, "the restore's input ends in an error, not a clean end of input it could commit at")
		})
	}
}

// TestApplyCommitsNoRuleWhenTheFillFails fails the ipset restore that fills the new sets:
// Apply reports it, and the iptables-restore that ran beside it is stopped before its
// COMMIT, so no rule naming a half-filled set is put in place.
func TestApplyCommitsNoRuleWhenTheFillFails(t *testing.T) {
	var committed []string
	dp := NewDataplane(func(_ context.Context, input io.Reader, name string, args ...string) (string, error) {
		stdin, err := readInput(input)
		if err != nil {
			return "", err
		}
		switch {
		case name == "iptables-save":
			return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n", nil
		case name == "iptables-restore":
			committed = append(committed, stdin)
		case name == "ipset" && strings.HasPrefix(stdin, "add "):
			return "", errors.New("ipset restore: line 1: the kernel says no")
		}
		return "", nil
	})
	err := dp.Apply(t.Context(), denyOneLocalPod(t))
	require.ErrorContains(t, err, "the kernel says no")
	assert.Empty(t, committed, "no restore read its COMMIT")
}

// denyOneLocalPod compiles one local pod that a default-deny ingress policy selects.
func denyOneLocalPod(t *testing.T) State {
	in := Input{NodeName: nodeName, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24")},
		Namespaces: []*corev1.Namespace{makeNamespace("x")}, Policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny", ingressRules())},
		Pods: []*corev1.Pod{makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5"))}}
	st, err := Compile(in)
	require.NoError(t, err)
	return st
}
