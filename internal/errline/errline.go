// Package errline formats an error for a container's last log line.
package errline

import "strings"

// Of joins the lines of err's message (a joined error, a command's output quoted in one)
// with "; ", so one log line says it all.
func Of(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
