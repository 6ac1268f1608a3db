package k3sflags

import (
	"errors"
	"fmt"
)

// Error names the flag a bad value came from, so the one-line error says what to fix.
type Error struct {
	Flag string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("invalid --%s: %v", e.Flag, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errors gathers every bad flag of one command line, so a user fixes them all at once.
type Errors []error

// Add records err, when not nil, as a problem of flag.
func (e *Errors) Add(flag string, err error) {
	if err != nil {
		*e = append(*e, &Error{Flag: flag, Err: err})
	}
}

// Err joins the problems, nil when there are none.
func (e Errors) Err() error { return errors.Join(e...) }
