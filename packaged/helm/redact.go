package helm

import (
	"regexp"
	"strings"
)

// urlUserinfo matches the scheme and userinfo of a URL anywhere in a text: everything
// between "://" and the last "@" before the host ends (at "/", "?", "#", white space or a
// quote), so a password with an unescaped "@" is caught whole.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\s"'<>` + "`" + `]*)@`)

// redactCredentials masks the credentials of every URL in s: the password of user:password
// (as url.URL.Redacted does) and a userinfo without a colon, which is often a token. It works
// on text rather than on one parsed URL because the URLs reach messages inside other
// libraries' errors: Helm's getter writes "failed to fetch <URL> : 401 Unauthorized" with the
// URL as given, and a URL that does not parse is still worth masking.
func redactCredentials(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return urlUserinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlUserinfo.FindStringSubmatch(m)
		scheme, userinfo := sub[1], sub[2]
		if user, _, ok := strings.Cut(userinfo, ":"); ok {
			return scheme + user + ":xxxxx@"
		}
		return scheme + "xxxxx@"
	})
}

// redactedError is err with the credentials of its URLs masked in its message; errors.Is
// and errors.As still see err.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactCredentials(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redactError returns err with its message masked by redactCredentials, nil for nil. Every
// error that leaves the helm controller (status, Events, logs) goes through it.
func redactError(err error) error {
	if err == nil {
		return nil
	}
	return redactedError{err: err}
}
