package reference

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNothingOfK3snet keeps the oracle independent: a helper shared with netpol.Compile
// would let one bug pass both sides of every dataplane test.
func TestImportsNothingOfK3snet(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/k3snet/k3snet") {
				t.Errorf("%s imports %s: the reference evaluator must share no code with netpol", name, path)
			}
		}
	}
}
