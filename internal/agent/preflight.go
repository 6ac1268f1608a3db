package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrCannotRunContainers is wrapped by Start's error when this machine cannot run containers
// (not root, no overlay filesystem, no cgroups, missing binaries); the server then suggests
// --disable-agent.
var ErrCannotRunContainers = errors.New("cannot run containers here")

// hostFacts are what the preflight learned about the machine that changes the configuration.
type hostFacts struct {
	// cgroupV1 is true on a cgroup v1 (or hybrid) host.
	cgroupV1 bool
	// restrictOOMScoreAdj is true when root lacks CAP_SYS_RESOURCE (some VMs and containers).
	restrictOOMScoreAdj bool
}

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/self/status's CapEff.
const capSysResource = 24

// Preflight checks, before anything starts, that this machine can run the node: root, the
// binaries in binDir and nodeBinDir, an overlay filesystem and cgroups. Its error wraps
// ErrCannotRunContainers and names every missing thing at once.
func Preflight(binDir, nodeBinDir string) error {
	_, err := preflight(findNodeBinaries(&Config{BinDir: binDir, NodeBinDir: nodeBinDir}))
	return err
}

// preflight checks what containers need and reports every missing thing at once.
func preflight(bins nodeBinaries) (hostFacts, error) {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root")
	}
	for _, f := range bins.required() {
		if info, err := os.Stat(f); err != nil || info.Mode()&0o111 == 0 {
			problems = append(problems, fmt.Sprintf("%s is missing (build it with hack/build-node.sh or hack/build-tools.sh)", f))
		}
	}
	filesystems, err := os.ReadFile("/proc/filesystems")
	if err != nil || !hasFilesystem(string(filesystems), "overlay") {
		problems = append(problems, "the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)")
	}
	var facts hostFacts
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
			problems = append(problems, "no cgroup hierarchy is mounted at /sys/fs/cgroup")
		}
		facts.cgroupV1 = true
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		if capEff, ok := capabilities(string(status)); ok {
			facts.restrictOOMScoreAdj = capEff&(1<<capSysResource) == 0
		}
	}
	if len(problems) > 0 {
		return hostFacts{}, fmt.Errorf("%w: %s", ErrCannotRunContainers, strings.Join(problems, "; "))
	}
	return facts, nil
}

// hasFilesystem reports whether /proc/filesystems lists fs.
func hasFilesystem(procFilesystems, fs string) bool {
	sc := bufio.NewScanner(strings.NewReader(procFilesystems))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true
		}
	}
	return false
}

// capabilities reads the effective capability set from /proc/<pid>/status.
func capabilities(status string) (uint64, bool) {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps, err == nil
		}
	}
	return 0, false
}
