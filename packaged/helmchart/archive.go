package helmchart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io/fs"
	"path"
	"time"
)

// Archive packs the chart whose sources are in dir of fsys into a gzipped tar with the
// layout Helm expects (<chart>/Chart.yaml, <chart>/templates/...). Output is deterministic:
// entries in lexical order, fixed headers, no gzip name or time.
func Archive(fsys fs.FS, dir string) ([]byte, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing chart %s: %w", dir, err)
	}
	// fs.WalkDir already walks in lexical order; files is sorted.
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("packing chart %s: %w", dir, err)
	}
	tw := tar.NewWriter(zw)
	root := path.Dir(dir)
	for _, p := range files {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading chart file %s: %w", p, err)
		}
		rel := p
		if root != "." {
			rel = p[len(root)+1:]
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     rel,
			Mode:     0o644,
			Size:     int64(len(data)),
			// A fixed time, owner and mode make the archive a function of the sources
			// only, so staging twice writes the same traefik.yaml and the deploy
			// controller sees an unchanged checksum.
			ModTime: time.Unix(0, 0),
			Format:  tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("packing chart file %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("packing chart file %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("packing chart %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("packing chart %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

// ChartContent returns Archive's output in the form HelmChart.spec.ChartContent holds:
// standard base64 of the .tgz.
func ChartContent(fsys fs.FS, dir string) (string, error) {
	tgz, err := Archive(fsys, dir)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(tgz), nil
}
