package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SetSysctl sets a network sysctl inside the namespace. key is in sysctl(8)
// form, such as "net.ipv4.ip_forward", or a path below /proc/sys when a
// component contains a dot (an interface called eth0.10, say).
func (n *Namespace) SetSysctl(key, value string) error {
	rel := key
	if !strings.Contains(key, "/") {
		rel = strings.ReplaceAll(key, ".", "/")
	}
	path := filepath.Join("/proc/sys", filepath.Clean("/"+rel))
	// /proc/sys/net resolves to the namespace of the thread that opens the file,
	// so writing from inside Do changes this namespace and not the host.
	err := n.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("setting sysctl %s=%s in netns %s: %w", key, value, n.name, err)
	}
	return nil
}

// EnableForwarding turns on IPv4 and IPv6 forwarding inside the namespace, so it
// routes between its links.
func (n *Namespace) EnableForwarding() error {
	for _, key := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if err := n.SetSysctl(key, "1"); err != nil {
			return err
		}
	}
	return nil
}
