package main

import (
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	width, height                  = 760, 480
	left, right, top, bottom       = 70, 200, 44, 52
	plotWidth, plotHeight          = width - left - right, height - top - bottom
	legendX, legendY, legendStride = width - right + 20, top + 10, 20
)

// palette colours the lines in order; it repeats past its end.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// logAxis maps a value to a coordinate on a log10 axis that spans whole decades.
type logAxis struct{ lo, hi float64 } // decades: 10^lo .. 10^hi

func newLogAxis(values []float64) logAxis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = min(lo, math.Log10(v)), max(hi, math.Log10(v))
	}
	a := logAxis{lo: math.Floor(lo), hi: math.Ceil(hi)}
	if a.hi == a.lo {
		a.hi++
	}
	return a
}

// at is the fraction 0..1 of the axis where v lies.
func (a logAxis) at(v float64) float64 { return (math.Log10(v) - a.lo) / (a.hi - a.lo) }

// decades are the powers of ten the axis spans.
func (a logAxis) decades() []float64 {
	var out []float64
	for d := a.lo; d <= a.hi; d++ {
		out = append(out, math.Pow(10, d))
	}
	return out
}

// median of a non-empty slice.
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func label(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// writeSVG draws each series against scale on log-log axes: a line through the median of
// each scale's runs, a dot per run, and a dashed line of slope 1 (cost proportional to the
// work) for comparison.
func writeSVG(w io.Writer, title string, all []*series) error {
	var xs, ys []float64
	for _, s := range all {
		for scale, vs := range s.points {
			xs = append(xs, scale)
			for _, v := range vs {
				if v <= 0 {
					return fmt.Errorf("%s at x%s is %s: a log axis needs positive values", s.metric, label(scale), label(v))
				}
				ys = append(ys, v)
			}
		}
	}
	if len(xs) == 0 {
		return errors.New("nothing to plot: no benchmark line named .../xN with those metrics")
	}
	xa, ya := newLogAxis(xs), newLogAxis(ys)
	px := func(v float64) float64 { return left + xa.at(v)*plotWidth }
	py := func(v float64) float64 { return top + (1-ya.at(v))*plotHeight }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for _, d := range xa.decades() {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(d), top, px(d), top+plotHeight)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">×%s</text>`+"\n", px(d), top+plotHeight+18, label(d))
	}
	for _, d := range ya.decades() {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(d), left+plotWidth, py(d))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, py(d), label(d))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, plotWidth, plotHeight)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">scale (× the workload of record)</text>`+"\n", left+plotWidth/2, height-10)

	// Slope 1 from the bottom-left corner: a metric parallel to it grows with the work.
	x0, y0 := math.Pow(10, xa.lo), math.Pow(10, ya.lo)
	x1 := math.Min(math.Pow(10, xa.hi), x0*math.Pow(10, ya.hi-ya.lo))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="5,4"/>`+"\n", px(x0), py(y0), px(x1), py(y0*x1/x0))

	for i, s := range all {
		colour := palette[i%len(palette)]
		scales := slices.Sorted(maps.Keys(s.points))
		var pts []string
		for _, x := range scales {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(median(s.points[x]))))
			for _, v := range s.points[x] {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(x), py(v), colour)
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colour)
		ly := legendY + i*legendStride
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", legendX, ly, legendX+22, ly, colour)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", legendX+28, ly, html.EscapeString(s.metric))
	}
	ly := legendY + len(all)*legendStride
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999" stroke-dasharray="5,4"/>`+"\n", legendX, ly, legendX+22, ly)
	fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">∝ scale</text>`+"\n", legendX+28, ly)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
