package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestPlotsEachMetricAgainstScale checks the parse of go test -bench output (sub-benchmarks
// /xN, custom metrics, repeated runs) and what the SVG draws for it.
func TestPlotsEachMetricAgainstScale(t *testing.T) {
	input := `BenchmarkScale/x1-2   1  28 first-ms  2.5 pod-event-ms  18 heap-MB
BenchmarkScale/x1-2   1  30 first-ms  4.5 pod-event-ms  18 heap-MB
BenchmarkScale/x10-2  1  326 first-ms  39 pod-event-ms  180 heap-MB
BenchmarkOther-2      5  100 ns/op
`
	all, err := parseBench(strings.NewReader(input), []string{"heap-MB", "first-ms"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].metric != "heap-MB" || all[1].metric != "first-ms" {
		t.Fatalf("series %v, want heap-MB then first-ms", all)
	}
	if got := all[1].points[1]; len(got) != 2 || median(got) != 29 {
		t.Fatalf("first-ms at x1: %v, want two runs with median 29", got)
	}
	var svg bytes.Buffer
	if err := writeSVG(&svg, "t", all); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(svg.String(), "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if n := strings.Count(svg.String(), "<circle"); n != 6 {
		t.Errorf("%d dots, want 6 (one per run and metric)", n)
	}
	if _, err := parseBench(strings.NewReader(input), []string{"rss-MB"}); err == nil {
		t.Error("a metric missing from the input was not refused")
	}
	zero, _ := parseBench(strings.NewReader("BenchmarkScale/x1-2 1 0 first-ms\n"), nil)
	if err := writeSVG(&svg, "t", zero); err == nil {
		t.Error("a zero value on a log axis was not refused")
	}
}

// TestExampleIsUpToDate checks that docs/scale-netpol.svg is what the plot of
// testdata/netpol-scale-readme.txt draws today.
func TestExampleIsUpToDate(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-title", exampleTitle, "-metrics", "first-ms,pod-event-ms,heap-MB", "testdata/netpol-scale-readme.txt"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want, err := os.ReadFile("../../docs/scale-netpol.svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("docs/scale-netpol.svg is stale: regenerate it with\n  go run ./bench/plot -title %q -metrics first-ms,pod-event-ms,heap-MB -o docs/scale-netpol.svg bench/plot/testdata/netpol-scale-readme.txt", exampleTitle)
	}
}

const exampleTitle = "netpol BenchmarkScale: compile cost against scale"
