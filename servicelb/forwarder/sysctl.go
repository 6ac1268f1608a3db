package forwarder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// forwardingSysctl is the sysctl, below /proc/sys, that the script checks for fam
// (klipper-lb's entry script), and the one the DaemonSet sets per Service family.
func forwardingSysctl(fam Family) string {
	if fam == IPv6 {
		return "net/ipv6/conf/all/forwarding"
	}
	return "net/ipv4/ip_forward"
}

// readForwarding reads fam's forwarding sysctl below procDir. /proc/sys/net belongs
// to the network namespace of the thread that opens it, so this reads the pod's.
// Like the script, only "1" means on; a missing file means the kernel has the
// family disabled, which is not an error either (K3s #10455).
func readForwarding(procDir string, fam Family) (forwarding, error) {
	path := filepath.Join(procDir, "sys", forwardingSysctl(fam))
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return forwardingAbsent, nil
	case err != nil:
		return forwardingOff, fmt.Errorf("reading %s forwarding sysctl %s: %w", fam, path, err)
	case strings.TrimSpace(string(data)) == "1":
		return forwardingOn, nil
	}
	return forwardingOff, nil
}
