package forwarder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadForwarding(t *testing.T) {
	tests := []struct {
		name  string
		fam   Family
		value *string // nil: the file does not exist
		want  forwarding
	}{
		{name: "IPv4 ip_forward 1 is on", fam: IPv4, value: ptr("1\n"), want: forwardingOn},
		{name: "IPv4 ip_forward 0 is off", fam: IPv4, value: ptr("0\n"), want: forwardingOff},
		{name: "IPv6 all.forwarding 1 is on", fam: IPv6, value: ptr("1\n"), want: forwardingOn},
		{name: "only 1 is on, as the script compares", fam: IPv6, value: ptr("2\n"), want: forwardingOff},
		{name: "a missing IPv6 sysctl means the kernel has IPv6 disabled", fam: IPv6, want: forwardingAbsent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := t.TempDir()
			if tt.value != nil {
				path := filepath.Join(proc, "sys", forwardingSysctl(tt.fam))
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(*tt.value), 0o644))
			}
			got, err := readForwarding(proc, tt.fam)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadForwardingUnreadable(t *testing.T) {
	proc := t.TempDir()
	// A directory where the file should be: reading fails with something other than
	// "does not exist", which is an error, not a skipped family.
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "sys", forwardingSysctl(IPv4)), 0o755))
	_, err := readForwarding(proc, IPv4)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "IPv4 forwarding sysctl")
}

func ptr(s string) *string { return &s }
