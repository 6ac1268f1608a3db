// Command plot draws how benchmark metrics grow with scale, as a log-log SVG with no
// dependency: it reads `go test -bench` output whose benchmark names end in /xN (N the
// scale, as netpol's BenchmarkScale/x1, /x10, /x100) and draws one line per metric, through
// the median of each scale's runs, beside a dashed line of slope 1 (cost proportional to the
// work). A metric steeper than that line grows faster than the work.
//
//	go test -run '^$' -bench BenchmarkScale -benchtime=1x ./netpol | plot -metrics first-ms,pod-event-ms,heap-MB -o scale.svg
//	plot [-title T] [-metrics a,b] [-o FILE] [FILE...]    (stdin without FILE; stdout without -o)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	title := fs.String("title", "cost against scale", "title of the plot")
	metrics := fs.String("metrics", "", "comma-separated metrics to draw, in this order (default: every metric of the input)")
	out := fs.String("o", "", "SVG file to write (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := plot(fs.Args(), stdin, stdout, *title, *metrics, *out); err != nil {
		fmt.Fprintf(stderr, "plot: %v\n", err)
		return 1
	}
	return 0
}

func plot(files []string, stdin io.Reader, stdout io.Writer, title, metrics, out string) error {
	var readers []io.Reader
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		readers = append(readers, f)
	}
	if len(readers) == 0 {
		readers = append(readers, stdin)
	}
	var want []string
	if metrics != "" {
		want = strings.Split(metrics, ",")
	}
	all, err := parseBench(io.MultiReader(readers...), want)
	if err != nil {
		return err
	}
	if out == "" {
		return writeSVG(stdout, title, all)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := writeSVG(f, title, all); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
