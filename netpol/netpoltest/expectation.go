package netpoltest

import "path"

// Expectation is an expected reachability matrix over the model's pods, built the way upstream
// e2e builds one: everything allowed, then cells switched by patterns such as "x/a", "x/*" or
// "*/*".
type Expectation struct {
	names   []string
	allowed map[[2]string]bool
}

// ExpectAll starts an expectation over the model pods with every cell allowed.
func ExpectAll() *Expectation {
	e := &Expectation{names: PodKeys(), allowed: map[[2]string]bool{}}
	for _, a := range e.names {
		for _, b := range e.names {
			e.allowed[[2]string{a, b}] = true
		}
	}
	return e
}

// Set switches every cell whose source matches fromPattern and destination toPattern.
func (e *Expectation) Set(fromPattern, toPattern string, ok bool) *Expectation {
	for _, a := range e.names {
		for _, b := range e.names {
			if MatchName(fromPattern, a) && MatchName(toPattern, b) {
				e.allowed[[2]string{a, b}] = ok
			}
		}
	}
	return e
}

// Ingress switches every cell towards the pods matching pattern.
func (e *Expectation) Ingress(pattern string, ok bool) *Expectation {
	return e.Set("*/*", pattern, ok)
}

// Egress switches every cell from the pods matching pattern.
func (e *Expectation) Egress(pattern string, ok bool) *Expectation { return e.Set(pattern, "*/*", ok) }

// Names returns the pods of the matrix, "x/a" to "z/c", in row and column order.
func (e *Expectation) Names() []string { return append([]string(nil), e.names...) }

// Allowed returns the matrix: cell [i][j] is the connection from Names()[i] to Names()[j].
// Loopback cells are allowed: upstream e2e ignores them, and a pod's traffic to itself never
// leaves the pod.
func (e *Expectation) Allowed() [][]bool {
	out := make([][]bool, len(e.names))
	for i, a := range e.names {
		out[i] = make([]bool, len(e.names))
		for j, b := range e.names {
			out[i][j] = a == b || e.allowed[[2]string{a, b}]
		}
	}
	return out
}

// MatchName reports whether name matches a path.Match pattern such as "x/*".
func MatchName(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}
