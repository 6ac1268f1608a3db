package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// dataDirMarker is the file k3slike writes into its data dir at start: a data dir with K3s's
// server token and without it belongs to a real K3s installation.
const dataDirMarker = "k3slike"

// defaultDataDir is K3s's default --data-dir: /var/lib/rancher/k3s for root,
// ~/.rancher/k3s for anyone else.
func defaultDataDir(uid int, home string) string {
	if uid == 0 || home == "" {
		return "/var/lib/rancher/k3s"
	}
	return filepath.Join(home, ".rancher", "k3s")
}

// dataDirState is what decides whether k3slike may use a data dir.
type dataDirState struct {
	dir         string
	k3sToken    bool     // <dir>/server/token exists: K3s's server has run here
	ownMarker   bool     // <dir>/k3slike exists: k3slike has run here
	k3sDataDirs []string // the data dirs of running `k3s server` and `k3s agent` processes
}

// checkDataDir refuses a data dir that belongs to a real K3s, so k3slike never overwrites
// K3s's staged manifests, certificates or database. k3slike's own data dirs of earlier
// versions have no marker and no server/token, and stay usable.
func checkDataDir(s dataDirState) error {
	if slices.Contains(s.k3sDataDirs, filepath.Clean(s.dir)) {
		return fmt.Errorf("data dir %s is in use by a running k3s; stop it or pass another --data-dir", s.dir)
	}
	if s.k3sToken && !s.ownMarker {
		return fmt.Errorf("data dir %s holds a K3s installation (server/token); pass another --data-dir", s.dir)
	}
	return nil
}

// k3sProcessDataDir returns the data dir of a `k3s server` or `k3s agent` command line
// (argv), and whether argv is one; defaultDir is the data dir without --data-dir.
func k3sProcessDataDir(argv []string, defaultDir string) (string, bool) {
	if len(argv) < 2 || filepath.Base(argv[0]) != "k3s" || (argv[1] != "server" && argv[1] != "agent") {
		return "", false
	}
	dir := defaultDir
	args := argv[2:]
	for i, a := range args {
		switch {
		case a == "--data-dir" || a == "-d" || a == "-data-dir":
			if i+1 < len(args) {
				dir = args[i+1]
			}
		case strings.HasPrefix(a, "--data-dir="), strings.HasPrefix(a, "-d="), strings.HasPrefix(a, "-data-dir="):
			_, dir, _ = strings.Cut(a, "=")
		}
	}
	return filepath.Clean(dir), true
}

// runningK3sDataDirs lists the data dirs of the k3s servers and agents running on this
// machine, from /proc/<pid>/cmdline.
func runningK3sDataDirs(defaultDir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if dir, ok := k3sProcessDataDir(argv, defaultDir); ok {
			out = append(out, dir)
		}
	}
	return out
}

// claimDataDir checks that dir is not K3s's and marks it as k3slike's.
func claimDataDir(dir, defaultDir string) error {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	s := dataDirState{
		dir:         dir,
		k3sToken:    exists(filepath.Join(dir, "server", "token")),
		ownMarker:   exists(filepath.Join(dir, dataDirMarker)),
		k3sDataDirs: runningK3sDataDirs(defaultDir),
	}
	if err := checkDataDir(s); err != nil {
		return err
	}
	if s.ownMarker {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, dataDirMarker), []byte("This data dir belongs to k3slike, not K3s.\n"), 0o644)
}
