package k3sflags

import (
	"slices"
	"strings"
)

// List collects a repeatable flag whose values may also be comma lists, as K3s's string
// slices do: --disable=coredns,traefik --disable servicelb. Items are trimmed and kept once,
// in the order first given.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Type names the value in pflag's help; with it a List is a pflag.Value as well as a
// flag.Value, so binaries on either package register the same flags.
func (l *List) Type() string { return "strings" }

// Set adds the items of one occurrence of the flag.
func (l *List) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" && !slices.Contains(*l, item) {
			*l = append(*l, item)
		}
	}
	return nil
}

// SetDefault sets l from a default such as an environment variable, when the flag was not
// given: an empty default leaves l empty.
func (l *List) SetDefault(v string) {
	if len(*l) == 0 {
		_ = l.Set(v)
	}
}
