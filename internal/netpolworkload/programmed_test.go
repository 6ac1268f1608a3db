package netpolworkload

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgrammedPodsReadsTheSetsNumberOfEntries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		out     string
		err     error
		want    int
		wantErr bool
	}{
		{name: "a set with entries", out: "Name: KUBE-DST-X\nType: hash:ip\nReferences: 2\nNumber of entries: 42\n", want: 42},
		{name: "no set yet", err: errors.New("ipset v7.19: The set with the given name does not exist"), want: 0},
		{name: "ipset failing otherwise", err: errors.New("ipset: permission denied"), wantErr: true},
		{name: "output without the count", out: "Name: KUBE-DST-X\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ProgrammedPods(t.Context(), func(_ context.Context, name string, args ...string) (string, error) {
				assert.Equal(t, "ipset", name)
				assert.Equal(t, []string{"list", "-t"}, args[:2])
				return tt.out, tt.err
			})
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}
}
