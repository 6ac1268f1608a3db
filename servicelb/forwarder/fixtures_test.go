package forwarder

import (
	"errors"
	"net/netip"
	"testing"
)

// newConfig returns a valid dual-stack Config for TCP 80 → 8080, changed by tweaks.
func newConfig(tweaks ...func(*Config)) Config {
	c := Config{
		SrcPort:   80,
		SrcRanges: prefixes("10.1.0.0/16", "fd00:1::/64"),
		Proto:     TCP,
		DestPort:  8080,
		DestIPs:   addrs("10.2.0.2", "fd00:2::2"),
	}
	for _, tweak := range tweaks {
		tweak(&c)
	}
	return c
}

// addrs parses addresses, panicking on a typo in the test itself.
func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// prefixes parses CIDRs, panicking on a typo in the test itself.
func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// problem is one *EnvError reduced to what a test asserts: the variable, the value
// and the sentinel it wraps.
type problem struct {
	Var   string
	Value string
	Err   error
}

// problems flattens err, an error from ConfigFromEnv or Validate, into its
// problems in order. Anything but joined *EnvErrors fails t.
func problems(t *testing.T, err error) []problem {
	t.Helper()
	var out []problem
	var walk func(error)
	walk = func(e error) {
		switch e := e.(type) {
		case *EnvError:
			out = append(out, problem{Var: e.Var, Value: e.Value, Err: sentinel(e.Err)})
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			t.Fatalf("error %q (%T) is not a joined *EnvError", e, e)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// sentinel returns which Err* sentinel err is or wraps.
func sentinel(err error) error {
	for _, s := range []error{ErrUnset, ErrEmpty, ErrBadPort, ErrBadProtocol, ErrBadRange, ErrBadDestination} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}
