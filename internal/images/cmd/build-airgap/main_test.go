package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/xtables-nft-multi"); err != nil && os.Getenv("CI") == "" {
		t.Skipf("needs Debian's iptables (hack/setup.sh installs it): %v", err)
	}
	progDir := t.TempDir()
	var progArgs []string
	for _, name := range []string{"pause", "coredns", "traefik", "klipper-lb", "testserver"} {
		p := filepath.Join(progDir, name)
		require.NoError(t, os.WriteFile(p, []byte(name), 0o755))
		progArgs = append(progArgs, "--"+name, p)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "images.tar")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantFile bool
	}{
		{name: "all programs and --out write the tarball silently", args: append(append([]string{}, progArgs...), "--out", out), wantCode: exitOK, wantFile: true},
		{name: "no --out is bad usage", args: progArgs, wantCode: exitBadUsage},
		{name: "a missing program is bad usage", args: append(append([]string{}, progArgs[2:]...), "--out", out), wantCode: exitBadUsage},
		{name: "an unknown flag is bad usage", args: []string{"--registry", "x"}, wantCode: exitBadUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(out))
			var stderr bytes.Buffer
			assert.Equal(t, tt.wantCode, run(tt.args, &stderr), "stderr: %s", stderr.String())
			entries, err := os.ReadDir(outDir)
			require.NoError(t, err)
			if !tt.wantFile {
				assert.Empty(t, entries)
				return
			}
			assert.Empty(t, stderr.String())
			require.Len(t, entries, 1, "no temporary file is left")
			assert.Equal(t, "images.tar", entries[0].Name())
			info, err := entries[0].Info()
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
		})
	}
}
