package netpol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// toolKernel is a Runner whose tools are all installed and permitted, except those in
// missing (not on PATH) and denied (run and fail, as without CAP_NET_ADMIN).
type toolKernel struct {
	missing, denied []string
	calls           []string
}

func (k *toolKernel) run(_ context.Context, _ io.Reader, name string, args ...string) (string, error) {
	k.calls = append(k.calls, name+" "+strings.Join(args, " "))
	for _, m := range k.missing {
		if m == name {
			return "", fmt.Errorf("%s: %w", name, &exec.Error{Name: name, Err: exec.ErrNotFound})
		}
	}
	for _, d := range k.denied {
		if d == name {
			return "", fmt.Errorf("%s: exit status 4: Permission denied (you must be root)", name)
		}
	}
	return "", nil
}

func TestPreflight(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	tests := []struct {
		name     string
		families []corev1.IPFamily
		missing  []string
		denied   []string
		// wantErr are substrings of the error, one per failing tool; none means success.
		wantErr []string
	}{
		{name: "every tool works on an IPv4 node", families: []corev1.IPFamily{v4}},
		{name: "ip6tables is not needed on an IPv4-only node", families: []corev1.IPFamily{v4}, missing: []string{"ip6tables", "ip6tables-save", "ip6tables-restore"}},
		{
			name: "a missing ipset names the ipset package", families: []corev1.IPFamily{v4}, missing: []string{"ipset"},
			wantErr: []string{"ipset is not installed (not on PATH): install the ipset package"},
		},
		{
			name: "a missing iptables-restore names the iptables package", families: []corev1.IPFamily{v4}, missing: []string{"iptables-restore"},
			wantErr: []string{"iptables-restore is not installed (not on PATH): install the iptables package"},
		},
		{
			name: "a dual-stack node needs ip6tables and says which tool is missing", families: []corev1.IPFamily{v4, v6}, missing: []string{"ip6tables"},
			wantErr: []string{"ip6tables is not installed"},
		},
		{
			name: "a tool that runs but is not permitted is reported with its error", families: []corev1.IPFamily{v4}, denied: []string{"iptables", "ipset"},
			wantErr: []string{"iptables does not work (it needs root or CAP_NET_ADMIN", "Permission denied", "ipset does not work"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &toolKernel{missing: tt.missing, denied: tt.denied}
			err := preflight(t.Context(), k.run, tt.families)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrToolUnusable)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
			var te *ToolError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, len(tt.missing) > 0, te.Missing)
		})
	}
}

// TestPreflightChecksOnlyReadOrTest pins that the trial commands change nothing: listings,
// versions and a restore in test mode.
func TestPreflightChecksOnlyReadOrTest(t *testing.T) {
	k := &toolKernel{}
	require.NoError(t, preflight(t.Context(), k.run, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}))
	assert.Equal(t, []string{
		"iptables -t filter -S INPUT", "iptables-save --version", "iptables-restore --noflush --test",
		"ip6tables -t filter -S INPUT", "ip6tables-save --version", "ip6tables-restore --noflush --test",
		"ipset list -n",
	}, k.calls)
}

// TestPreflightOnThisHost runs the real checks: on a host with the tools, as root, they pass.
func TestPreflightOnThisHost(t *testing.T) {
	for _, tool := range []string{"iptables", "ip6tables", "ipset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not on PATH", tool)
		}
	}
	err := NewDataplane(nil).Preflight(t.Context(), []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol})
	var te *ToolError
	if errors.As(err, &te) && !te.Missing {
		t.Skipf("skipping: the tools are installed but not usable here (not root?): %v", err)
	}
	require.NoError(t, err)
}

// TestControllerStartFailsWithoutIPSet: Start returns the preflight error, naming the tool,
// and programs nothing.
func TestControllerStartFailsWithoutIPSet(t *testing.T) {
	k := &toolKernel{missing: []string{"ipset"}}
	f, ctx := newFixture(t, Options{}, NewDataplane(k.run))
	err := f.ctrl.Start(ctx, f.factory)
	require.ErrorIs(t, err, ErrToolUnusable)
	assert.ErrorContains(t, err, "install the ipset package")
	assert.Len(t, k.calls, len(preflightChecks([]corev1.IPFamily{corev1.IPv4Protocol})), "only the checks ran, nothing was programmed")
	assert.Zero(t, f.syncs(t, syncApplied))
}
