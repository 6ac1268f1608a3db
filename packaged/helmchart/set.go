package helmchart

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// SetArg is one spec.set entry as K3s's job passes it to helm (klipper-helm's entry
// script): an integer, or true, false or null (case-insensitive), typed (--set); anything
// else as a string (--set-string), its unescaped commas escaped so that a value is never
// split into several keys.
type SetArg struct {
	// Typed: --set; otherwise --set-string.
	Typed bool
	// KeyValue is the flag's argument, key=value.
	KeyValue string
}

// Flag is the helm flag that takes the argument.
func (a SetArg) Flag() string {
	if a.Typed {
		return "--set"
	}
	return "--set-string"
}

// SetArgFor returns the helm argument of the spec.set entry key: v.
func SetArgFor(key string, v intstr.IntOrString) SetArg {
	if v.Type == intstr.Int {
		return SetArg{Typed: true, KeyValue: key + "=" + strconv.Itoa(int(v.IntVal))}
	}
	switch lower := strings.ToLower(v.StrVal); lower {
	case "true", "false", "null":
		return SetArg{Typed: true, KeyValue: key + "=" + lower}
	}
	return SetArg{KeyValue: key + "=" + escapeCommas(v.StrVal)}
}

// escapeCommas puts a backslash before every comma that has none.
func escapeCommas(s string) string {
	var b strings.Builder
	prev := rune(0)
	for _, r := range s {
		if r == ',' && prev != '\\' {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}
