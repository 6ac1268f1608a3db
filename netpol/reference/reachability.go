package reference

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
)

// Probe is the connection a reachability matrix tries between every ordered pair of endpoints.
type Probe struct {
	// Protocol is TCP, UDP or SCTP; empty means TCP.
	Protocol corev1.Protocol
	// Port is the destination port.
	Port int32
	// Family is the address family; empty means each destination pod's primary family.
	Family corev1.IPFamily
}

// String renders the probe as "TCP/80" or "TCP/80/IPv6".
func (p Probe) String() string {
	s := fmt.Sprintf("%s/%d", orTCP(p.Protocol), p.Port)
	if p.Family != "" {
		s += "/" + string(p.Family)
	}
	return s
}

// Matrix is a reachability matrix over a list of endpoints, the shape upstream e2e probes: the
// cell in row i and column j is the connection from Endpoints[i] to Endpoints[j].
type Matrix struct {
	// Probe is the port, protocol and family every cell tried.
	Probe Probe
	// Endpoints names the rows (sources) and columns (destinations), as Endpoint.String does.
	Endpoints []string
	// Allowed holds the outcome of every cell.
	Allowed [][]bool
	// Verdicts explains every cell of a computed matrix; nil in an observed one.
	Verdicts [][]Verdict
}

// Reachability evaluates probe between every ordered pair of endpoints, a pod with itself
// included, against cluster. Its error is Evaluate's for the first cell that has one.
func Reachability(cluster Cluster, endpoints []Endpoint, probe Probe) (Matrix, error) {
	ev, err := newEvaluator(cluster)
	if err != nil {
		return Matrix{}, err
	}
	m := NewMatrix(probe, endpoints)
	m.Verdicts = make([][]Verdict, len(endpoints))
	for i, src := range endpoints {
		m.Verdicts[i] = make([]Verdict, len(endpoints))
		for j, dst := range endpoints {
			v, err := ev.evaluate(Connection{Src: src, Dst: dst, Protocol: probe.Protocol, Port: probe.Port, Family: probe.Family})
			if err != nil {
				return Matrix{}, err
			}
			m.Allowed[i][j], m.Verdicts[i][j] = v.Allowed, v
		}
	}
	return m, nil
}

// NewMatrix returns a matrix over endpoints with every cell denied, for a test to fill in
// with what it observed.
func NewMatrix(probe Probe, endpoints []Endpoint) Matrix {
	m := Matrix{Probe: probe, Endpoints: make([]string, len(endpoints)), Allowed: make([][]bool, len(endpoints))}
	for i, e := range endpoints {
		m.Endpoints[i] = e.String()
		m.Allowed[i] = make([]bool, len(endpoints))
	}
	return m
}

// String renders the matrix as upstream e2e prints its truth table: a header of destinations,
// then one row per source, "." for allowed and "X" for denied.
func (m Matrix) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	fmt.Fprint(w, m.Probe.String())
	for _, name := range m.Endpoints {
		fmt.Fprint(w, "\t"+name)
	}
	fmt.Fprintln(w)
	for i, row := range m.Allowed {
		fmt.Fprint(w, m.Endpoints[i])
		for _, ok := range row {
			cell := "X"
			if ok {
				cell = "."
			}
			fmt.Fprint(w, "\t"+cell)
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush() // a strings.Builder does not fail
	return b.String()
}

// Diff lists the cells where got disagrees with m, the expected matrix, each with m's verdict
// when m has one; it is empty when they agree. Matrices over different endpoints disagree as
// a whole.
func (m Matrix) Diff(got Matrix) []string {
	if !slices.Equal(m.Endpoints, got.Endpoints) || len(got.Allowed) != len(m.Allowed) {
		return []string{fmt.Sprintf("endpoints differ: want %v, got %v", m.Endpoints, got.Endpoints)}
	}
	var diffs []string
	for i := range m.Allowed {
		if len(got.Allowed[i]) != len(m.Allowed[i]) {
			return []string{fmt.Sprintf("row %s has %d cells, want %d", m.Endpoints[i], len(got.Allowed[i]), len(m.Allowed[i]))}
		}
		for j, want := range m.Allowed[i] {
			if got.Allowed[i][j] == want {
				continue
			}
			d := fmt.Sprintf("%s -> %s %s: want %s, got %s", m.Endpoints[i], m.Endpoints[j], m.Probe, allowedWord(want), allowedWord(got.Allowed[i][j]))
			if m.Verdicts != nil {
				d += ": " + m.Verdicts[i][j].String()
			}
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// allowedWord renders an outcome for Diff.
func allowedWord(ok bool) string {
	if ok {
		return "allowed"
	}
	return "denied"
}
