package images

import (
	"debug/elf"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedLibrariesOfIptables(t *testing.T) {
	const bin = "/usr/sbin/xtables-nft-multi"
	needHostFile(t, bin, "Debian's iptables")
	files, err := SharedLibraries(bin)
	require.NoError(t, err)

	paths := map[string]File{}
	for _, f := range files {
		paths[f.Path] = f
		assert.Equal(t, f.Path, f.Source, "a library is copied from the path the loader opens")
	}
	libDir := "/lib/" + multiarchTriple()
	for _, want := range []string{
		"/lib64/ld-linux-x86-64.so.2", // PT_INTERP
		libDir + "/libc.so.6",
		libDir + "/libxtables.so.12",
		libDir + "/libnftnl.so.11",
		libDir + "/libmnl.so.0",
	} {
		assert.Contains(t, paths, want)
	}
	assert.NotContains(t, paths, libDir+"/ld-linux-x86-64.so.2", "libc's DT_NEEDED on the loader is the loader itself")
	assert.IsIncreasing(t, pathsOf(files))
}

func TestSharedLibrariesOfAStaticBinary(t *testing.T) {
	bin := buildStatic(t, "./pause")
	files, err := SharedLibraries(bin)
	require.NoError(t, err)
	assert.Empty(t, files)
}

func TestFindLibrary(t *testing.T) {
	const bin = "/usr/sbin/xtables-nft-multi"
	needHostFile(t, bin, "Debian's iptables")
	m, c, err := elfKind(bin)
	require.NoError(t, err)
	libDir := "/lib/" + multiarchTriple()
	other := elf.EM_AARCH64
	if m == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	tests := []struct {
		name    string
		lib     string
		dirs    []string
		machine elf.Machine
		want    string
		wantErr bool
	}{
		{name: "the first directory holding the library wins", lib: "libc.so.6", dirs: []string{t.TempDir(), libDir, "/usr/lib/" + multiarchTriple()}, machine: m, want: filepath.Join(libDir, "libc.so.6")},
		{name: "a library of another machine is skipped", lib: "libc.so.6", dirs: []string{libDir}, machine: other, wantErr: true},
		{name: "a library in no directory is not found", lib: "libk3snet-none.so.1", dirs: []string{libDir}, machine: m, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findLibrary(tt.lib, tt.dirs, tt.machine, c)
			if tt.wantErr {
				require.ErrorIs(t, err, errLibraryNotFound)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// pathsOf returns the paths of files in order.
func pathsOf(files []File) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}
