// Package forwarder is the dataplane of a K3s ServiceLB (Klipper LB) pod: what the
// rancher/klipper-lb image's entry script does, as a library and a small binary
// (cmd/klipper-lb), so a fork can build its own LB image.
//
// One forwarder serves one Service port. It reads the container's environment
// (SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT, DEST_IPS, as K3s's ServiceLB sets them for
// klipper-lb), and inside the pod's network namespace it accepts forwarded traffic
// only from the source ranges, DNATs the port to the destinations (the Service's
// ClusterIPs, or hostIP:nodePort for externalTrafficPolicy: Local) and masquerades
// it, for IPv4 and IPv6 independently.
//
// Where the script differs, this package does better:
//   - rules live in chains of its own (KLIPPER-LB-FWD/DNAT/MASQ-<PROTO>-<PORT>), so a
//     second start installs nothing twice and SIGTERM removes exactly its own rules,
//     leaving the pod's other ports (other containers in the same netns) alone;
//   - several destinations of one family share the connections round-robin instead
//     of the last one winning;
//   - bad environment is refused up front, naming each variable and value (the
//     binary prints it as one line), where the script fails at its first iptables call;
//   - a family whose forwarding sysctl is off is skipped with a log line naming the
//     sysctl (the script skips it silently since 2024-07), and so is a family with
//     no destination or no source range.
//
// The rules are computed as data by pure functions (rules.go), rendered to iptables
// arguments (render.go) and applied through github.com/coreos/go-iptables (apply.go).
// The backend is chosen the way the script chooses it (backend.go).
package forwarder
