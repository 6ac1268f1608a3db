package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// settingSources are where a flag's value comes from besides the command line, which fs has
// parsed already.
type settingSources struct {
	config        map[string]configValue // merged config files
	getenv        func(string) string
	unimplemented map[string]bool // K3s's flags of the command that k3slike lacks
}

// applySettings fills the flags the command line left unset, with K3s's precedence: command
// line, then environment, then config files, then the flag's default. A list flag given on
// the command line replaces the config file's list, as K3s documents. It returns warnings
// for settings it ignores; values a flag refuses are errors naming their file and key, or
// their variable.
func applySettings(fs *pflag.FlagSet, src settingSources) (warnings []string, err error) {
	fromArgs := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { fromArgs[f.Name] = true })
	fromEnv := map[string]bool{}
	var errs []error
	var ignored []string
	for _, e := range k3sEnv {
		v := src.getenv(e.env)
		switch f := fs.Lookup(e.flag); {
		case v == "" || e.flag == "config":
		case f == nil:
			if src.unimplemented[e.flag] {
				ignored = append(ignored, "$"+e.env)
			}
		case !fromArgs[f.Name]:
			fromEnv[f.Name] = true
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("$%s: invalid value %q for --%s: %w", e.env, v, f.Name, err))
			}
		}
	}
	keys := make([]string, 0, len(src.config))
	for k := range src.config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var unknown []string
	for _, k := range keys {
		v := src.config[k]
		f := fs.Lookup(k)
		if f == nil && len(k) == 1 {
			f = fs.ShorthandLookup(k)
		}
		switch {
		case f == nil && src.unimplemented[k]:
			ignored = append(ignored, k)
		case f == nil:
			unknown = append(unknown, fmt.Sprintf("%s (%s)", k, v.file()))
		case k == "config":
			unknown = append(unknown, fmt.Sprintf("%s (%s)", k, v.file()))
		case fromArgs[f.Name] || fromEnv[f.Name]:
		case v.list && !isListFlag(f) && len(v.items) != 1:
			errs = append(errs, fmt.Errorf("config file %s: key %q: --%s takes one value, not a list", v.file(), k, f.Name))
		default:
			for i, item := range v.items {
				if err := fs.Set(f.Name, item); err != nil {
					errs = append(errs, fmt.Errorf("config file %s: key %q: invalid value %q: %w", v.files[i], k, item, err))
				}
			}
		}
	}
	if len(ignored) > 0 {
		warnings = append(warnings, "ignoring K3s settings k3snet does not implement: "+strings.Join(ignored, ", "))
	}
	if len(unknown) > 0 {
		// K3s skips keys that are not flags of the command, with a warning: one config file
		// serves servers and agents.
		warnings = append(warnings, "ignoring config file keys that are not flags of this command: "+strings.Join(unknown, ", "))
	}
	return warnings, errors.Join(errs...)
}

// isListFlag reports whether f is repeatable, so a config file may give it a YAML list.
func isListFlag(f *pflag.Flag) bool {
	if _, ok := f.Value.(pflag.SliceValue); ok {
		return true
	}
	switch f.Value.Type() {
	case "strings", "stringSlice", "stringArray":
		return true
	}
	return false
}
