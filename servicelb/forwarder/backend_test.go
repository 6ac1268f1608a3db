package forwarder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChooseBackend(t *testing.T) {
	tests := []struct {
		name  string
		facts backendFacts
		want  Backend
	}{{
		name:  "nf_tables in the module list means nft, as the script's lsmod | grep decides",
		facts: backendFacts{modulesListed: true, nfTablesLoaded: true, commands: map[string]Backend{"iptables": BackendLegacy}},
		want:  BackendNFT,
	}, {
		name:  "a module list without nf_tables means legacy, whatever the image's default",
		facts: backendFacts{modulesListed: true, commands: map[string]Backend{"iptables": BackendNFT}},
		want:  BackendLegacy,
	}, {
		name:  "no module list (no loadable modules) follows the image's iptables when it is nft",
		facts: backendFacts{commands: map[string]Backend{"iptables": BackendNFT}},
		want:  BackendNFT,
	}, {
		name:  "no module list follows the image's iptables when it is legacy",
		facts: backendFacts{commands: map[string]Backend{"iptables": BackendLegacy, "iptables-nft": BackendNFT}},
		want:  BackendLegacy,
	}, {
		name:  "no module list and no plain iptables falls back to the script's legacy",
		facts: backendFacts{commands: map[string]Backend{"iptables-nft": BackendNFT}},
		want:  BackendLegacy,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := chooseBackend(tt.facts)
			assert.Equal(t, tt.want, got)
			assert.NotEmpty(t, why, "the choice is explained in the log")
		})
	}
}

func TestChooseCommand(t *testing.T) {
	debian := map[string]Backend{
		"iptables": BackendNFT, "iptables-nft": BackendNFT, "iptables-legacy": BackendLegacy,
		"ip6tables": BackendNFT, "ip6tables-nft": BackendNFT, "ip6tables-legacy": BackendLegacy,
	}
	tests := []struct {
		name     string
		fam      Family
		backend  Backend
		commands map[string]Backend
		want     string
		wantErr  error
	}{{
		name: "nft IPv4 prefers iptables-nft", fam: IPv4, backend: BackendNFT, commands: debian, want: "iptables-nft",
	}, {
		name: "legacy IPv6 prefers ip6tables-legacy", fam: IPv6, backend: BackendLegacy, commands: debian, want: "ip6tables-legacy",
	}, {
		name: "a plain iptables of the right backend will do", fam: IPv4, backend: BackendLegacy,
		commands: map[string]Backend{"iptables": BackendLegacy}, want: "iptables",
	}, {
		name: "a plain iptables of the other backend will not", fam: IPv4, backend: BackendLegacy,
		commands: map[string]Backend{"iptables": BackendNFT, "ip6tables-legacy": BackendLegacy}, wantErr: errNoCommand,
	}, {
		name: "an image without ip6tables cannot program IPv6", fam: IPv6, backend: BackendNFT,
		commands: map[string]Backend{"iptables": BackendNFT}, wantErr: errNoCommand,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseCommand(tt.fam, tt.backend, tt.commands)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestModulesList(t *testing.T) {
	lsmod := []byte("nft_chain_nat 12288 7 - Live 0x0000000000000000\n" +
		"nf_tables 344064 263 nft_chain_nat,nft_compat, Live 0x0000000000000000\n")
	tests := []struct {
		name   string
		data   []byte
		module string
		want   bool
	}{
		{name: "nf_tables listed by name", data: lsmod, module: "nf_tables", want: true},
		{name: "a name that only appears in another module's users does not count", data: lsmod, module: "nft_compat"},
		{name: "a prefix of a listed name does not count", data: lsmod, module: "nf_table"},
		{name: "an empty list has nothing", data: nil, module: "nf_tables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, modulesList(tt.data, tt.module))
		})
	}
}

func TestBackendOfVersion(t *testing.T) {
	tests := []struct {
		name, out string
		want      Backend
	}{
		{name: "nft build", out: "iptables v1.8.9 (nf_tables)\n", want: BackendNFT},
		{name: "legacy build", out: "iptables v1.8.9 (legacy)\n", want: BackendLegacy},
		{name: "pre-1.8 has no mode and is legacy", out: "iptables v1.6.1\n", want: BackendLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, backendOfVersion(tt.out))
		})
	}
}

// fakeCommand writes an executable called name into dir that prints out.
func fakeCommand(t *testing.T, dir, name, out string) {
	t.Helper()
	script := "#!/bin/sh\necho '" + out + "'\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755))
}

func TestGatherBackendFacts(t *testing.T) {
	bin := t.TempDir()
	fakeCommand(t, bin, "iptables", "iptables v1.8.10 (nf_tables)")
	fakeCommand(t, bin, "iptables-legacy", "iptables v1.8.10 (legacy)")
	fakeCommand(t, bin, "ip6tables", "ip6tables v1.8.10 (legacy)")
	t.Setenv("PATH", bin)

	t.Run("a module list with nf_tables and the commands of the families asked for", func(t *testing.T) {
		proc := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(proc, "modules"), []byte("nf_tables 1 0 - Live 0x0\n"), 0o644))
		got, err := gatherBackendFacts(proc, []Family{IPv4})
		require.NoError(t, err)
		assert.Equal(t, backendFacts{modulesListed: true, nfTablesLoaded: true, commands: map[string]Backend{
			"iptables": BackendNFT, "iptables-legacy": BackendLegacy,
		}}, got)
	})
	t.Run("no module list, both families; a plain command's backend comes from --version", func(t *testing.T) {
		got, err := gatherBackendFacts(t.TempDir(), []Family{IPv4, IPv6})
		require.NoError(t, err)
		assert.Equal(t, backendFacts{commands: map[string]Backend{
			"iptables": BackendNFT, "iptables-legacy": BackendLegacy, "ip6tables": BackendLegacy,
		}}, got)
	})
}
