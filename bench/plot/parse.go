package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// scaleName finds the scale in a sub-benchmark's name: BenchmarkScale/x10-2 is 10.
var scaleName = regexp.MustCompile(`/x(\d+)(?:-\d+)?$`)

// series is one metric's values by scale; several runs of a scale are kept.
type series struct {
	metric string
	points map[float64][]float64
}

// parseBench reads `go test -bench` output and returns, in order of first appearance, every
// metric of the benchmark lines whose name ends in /xN (N the scale); want, if not empty,
// keeps only those metrics, in its order. Go's own ns/op, B/op and allocs/op are metrics too.
func parseBench(r io.Reader, want []string) ([]*series, error) {
	byName := map[string]*series{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Name, iterations, then value-unit pairs.
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		m := scaleName.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		scale, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fields[0], err)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q of %s: %w", fields[0], fields[i], fields[i+1], err)
			}
			unit := fields[i+1]
			s := byName[unit]
			if s == nil {
				s = &series{metric: unit, points: map[float64][]float64{}}
				byName[unit] = s
				order = append(order, unit)
			}
			s.points[scale] = append(s.points[scale], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(want) > 0 {
		order = want
	}
	var out []*series
	for _, name := range order {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("no metric %q in the input", name)
		}
		out = append(out, s)
	}
	return out, nil
}
