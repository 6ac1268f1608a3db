package forwarder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Backend is the kernel interface the iptables commands program.
type Backend string

// The backends, named as iptables' -nft and -legacy commands are.
const (
	// BackendNFT is iptables over nf_tables (iptables-nft, xtables-nft-multi).
	BackendNFT Backend = "nft"
	// BackendLegacy is iptables over the x_tables kernel API (iptables-legacy).
	BackendLegacy Backend = "legacy"
)

// backendFacts is what the forwarder observes before it picks a backend.
type backendFacts struct {
	// modulesListed: /proc/modules could be read, so lsmod prints a list.
	modulesListed bool
	// nfTablesLoaded: that list has the nf_tables module.
	nfTablesLoaded bool
	// commands are the iptables commands found on PATH, by name, with the backend
	// each one programs: the -nft and -legacy names say it, the plain names say it
	// in --version ("iptables v1.8.9 (nf_tables)"; no suffix means legacy).
	commands map[string]Backend
}

// chooseBackend picks the backend the way the script does: nft when lsmod
// lists nf_tables, legacy otherwise. It returns the reason for the log, as the script
// logs "nft mode detected" or "legacy mode detected".
//
// One case is decided differently: with no /proc/modules at all, the kernel has no
// loadable modules and nf_tables may well be built in; lsmod prints nothing and the
// script picks legacy blindly. Here the image's own default, the backend of the plain
// iptables command, decides, and legacy only when there is none.
func chooseBackend(f backendFacts) (Backend, string) {
	switch {
	case f.nfTablesLoaded:
		return BackendNFT, "nf_tables is loaded"
	case f.modulesListed:
		return BackendLegacy, "nf_tables is not loaded"
	}
	if b, ok := f.commands["iptables"]; ok {
		return b, "no kernel module list; the image's iptables uses " + string(b)
	}
	return BackendLegacy, "no kernel module list and no plain iptables command"
}

// commandNames returns the commands that program b for fam, preferred first. The
// script points iptables and ip6tables at the backend's multi-binary; the -nft and
// -legacy names are the same binaries without touching the image's files.
func commandNames(fam Family, b Backend) []string {
	base := "iptables"
	if fam == IPv6 {
		base = "ip6tables"
	}
	return []string{base + "-" + string(b), base}
}

// errNoCommand means no command on PATH programs the chosen backend for a family.
var errNoCommand = errors.New("no iptables command for the backend")

// chooseCommand returns the command that programs b for fam, from the commands found.
// A plain iptables qualifies only when it programs b itself.
func chooseCommand(fam Family, b Backend, commands map[string]Backend) (string, error) {
	names := commandNames(fam, b)
	for _, name := range names {
		if got, ok := commands[name]; ok && got == b {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %s needs one of %s on PATH", errNoCommand, fam, strings.Join(names, ", "))
}

// gatherBackendFacts reads the module list below procDir and looks up the iptables
// commands of every family in fams on PATH, asking the plain ones for their backend.
// It takes no context: `iptables --version` returns at once, and a SIGTERM during
// start-up must not turn into a failed install.
func gatherBackendFacts(procDir string, fams []Family) (backendFacts, error) {
	f := backendFacts{commands: map[string]Backend{}}

	data, err := os.ReadFile(filepath.Join(procDir, "modules"))
	switch {
	case err == nil:
		f.modulesListed = true
		f.nfTablesLoaded = modulesList(data, "nf_tables")
	case errors.Is(err, fs.ErrNotExist):
		// A kernel without loadable modules; chooseBackend knows what that means.
	default:
		return backendFacts{}, fmt.Errorf("reading kernel module list %s: %w", filepath.Join(procDir, "modules"), err)
	}

	for _, fam := range fams {
		for _, b := range []Backend{BackendNFT, BackendLegacy} {
			for _, name := range commandNames(fam, b) {
				if _, seen := f.commands[name]; seen {
					continue
				}
				if _, err := exec.LookPath(name); err != nil {
					continue
				}
				if name != "iptables" && name != "ip6tables" {
					f.commands[name] = b
					continue
				}
				out, err := exec.Command(name, "--version").Output()
				if err != nil {
					return backendFacts{}, fmt.Errorf("asking %s for its version: %w", name, err)
				}
				f.commands[name] = backendOfVersion(string(out))
			}
		}
	}
	return f, nil
}

// modulesList reports whether /proc/modules content lists module by name. lsmod
// prints the same first column; the script greps its output for nf_tables.
func modulesList(data []byte, module string) bool {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if name, _, _ := strings.Cut(s.Text(), " "); name == module {
			return true
		}
	}
	return false
}

// backendOfVersion reads the backend from `iptables --version`: "iptables v1.8.9
// (nf_tables)" or "(legacy)"; versions before 1.8 print no mode and are legacy.
func backendOfVersion(out string) Backend {
	if strings.Contains(out, "(nf_tables)") {
		return BackendNFT
	}
	return BackendLegacy
}
