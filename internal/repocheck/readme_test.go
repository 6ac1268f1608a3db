package repocheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCompositionSnippetCompiles checks that README's composition snippet is, line for
// line, the function ccmstub's example file compiles, so the README never shows code that no
// longer builds.
func TestReadmeCompositionSnippetCompiles(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Composing controllers in your own binary\n")
	if !ok {
		t.Fatal("README has no section \"Composing controllers in your own binary\"")
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("the section has no Go snippet")
	}
	snippet, _, _ := strings.Cut(block, "```")
	example, err := os.ReadFile(filepath.Join(root, "ccmstub", "example_compose_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), snippet) {
		t.Errorf("README's composition snippet is not the one ccmstub/example_compose_test.go compiles:\n%s", snippet)
	}
}
