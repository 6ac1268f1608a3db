package forwarder

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The environment variables the ServiceLB DaemonSet gives each LB container, in the
// order it writes them. They are the container's whole input.
const (
	EnvSrcPort   = "SRC_PORT"
	EnvSrcRanges = "SRC_RANGES"
	EnvDestProto = "DEST_PROTO"
	EnvDestPort  = "DEST_PORT"
	EnvDestIPs   = "DEST_IPS"
)

// EnvError is a bad environment variable: which one, its value, and why.
type EnvError struct {
	// Var is the variable's name, such as SRC_PORT.
	Var string
	// Value is the offending value: the whole variable, or one entry of a list.
	Value string
	// Err is why, one of the Err* sentinels, possibly wrapped with detail.
	Err error
}

// Error returns VAR="value": reason, or VAR: reason when there is no value to show.
func (e *EnvError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", e.Var, e.Err)
	}
	return fmt.Sprintf("%s=%q: %v", e.Var, e.Value, e.Err)
}

// Unwrap returns the reason, so errors.Is finds the sentinel.
func (e *EnvError) Unwrap() error { return e.Err }

// ConfigFromEnv reads the LB container's environment through lookup (os.LookupEnv in
// a binary) and returns its Config, or every problem found, joined, each an *EnvError.
//
// SRC_RANGES and DEST_IPS are comma lists, as the script splits them;
// blanks around entries and empty entries are ignored. DEST_IPS may mix families: the
// downward API renders status.hostIPs as "10.0.0.5,fd00::5". SRC_RANGES entries may be
// bare addresses, which iptables -s reads as single hosts. Ranges come back masked to
// their network, and both lists sorted and without duplicates, so two spellings of
// one Service give one rule set.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	var (
		cfg  Config
		errs []error
	)
	get := func(name string) (string, bool) {
		v, ok := lookup(name)
		if !ok {
			errs = append(errs, &EnvError{Var: name, Err: ErrUnset})
			return "", false
		}
		v = strings.TrimSpace(v)
		if v == "" {
			errs = append(errs, &EnvError{Var: name, Err: ErrEmpty})
			return "", false
		}
		return v, true
	}

	if v, ok := get(EnvSrcPort); ok {
		p, err := parsePort(v)
		if err == nil && p == 0 {
			err = ErrBadPort
		}
		if err != nil {
			errs = append(errs, &EnvError{Var: EnvSrcPort, Value: v, Err: err})
		}
		cfg.SrcPort = p
	}
	if v, ok := get(EnvSrcRanges); ok {
		ranges, rangeErrs := parseRanges(v)
		errs = append(errs, rangeErrs...)
		cfg.SrcRanges = ranges
	}
	if v, ok := get(EnvDestProto); ok {
		p, err := parseProtocol(v)
		if err != nil {
			errs = append(errs, &EnvError{Var: EnvDestProto, Value: v, Err: err})
		}
		cfg.Proto = p
	}
	if v, ok := get(EnvDestPort); ok {
		p, err := parsePort(v)
		if err == nil && p == 0 {
			err = errNoNodePort
		}
		if err != nil {
			errs = append(errs, &EnvError{Var: EnvDestPort, Value: v, Err: err})
		}
		cfg.DestPort = p
	}
	if v, ok := get(EnvDestIPs); ok {
		ips, ipErrs := parseDestinations(v)
		errs = append(errs, ipErrs...)
		cfg.DestIPs = ips
	}

	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg.normalized(), nil
}

// parsePort parses a decimal port from 0 to 65535. The callers reject 0, each with
// its own explanation.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, ErrBadPort
	}
	return uint16(n), nil
}

// splitList splits a comma list the way the script's `for x in ${VAR//,/ }` does:
// empty entries disappear.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseRanges parses SRC_RANGES, in the order written.
func parseRanges(s string) ([]netip.Prefix, []error) {
	var (
		out  []netip.Prefix
		errs []error
	)
	for _, f := range splitList(s) {
		p, err := parseRange(f)
		if err != nil {
			errs = append(errs, &EnvError{Var: EnvSrcRanges, Value: f, Err: err})
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 && len(errs) == 0 {
		// Only commas: the script would install no ACCEPT and accept nobody, silently.
		errs = append(errs, &EnvError{Var: EnvSrcRanges, Value: s, Err: ErrEmpty})
	}
	return out, errs
}

// parseRange parses one SRC_RANGES entry: a CIDR, or an address meaning that host.
func parseRange(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, ErrBadRange
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, ErrBadRange
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseDestinations parses DEST_IPS, in the order written.
func parseDestinations(s string) ([]netip.Addr, []error) {
	var (
		out  []netip.Addr
		errs []error
	)
	for _, f := range splitList(s) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			errs = append(errs, &EnvError{Var: EnvDestIPs, Value: f, Err: ErrBadDestination})
			continue
		}
		if err := checkDestination(a); err != nil {
			errs = append(errs, &EnvError{Var: EnvDestIPs, Value: f, Err: err})
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, &EnvError{Var: EnvDestIPs, Value: s, Err: ErrEmpty})
	}
	return out, errs
}
