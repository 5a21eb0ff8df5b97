// Package conformance finds the shared folder of real Alma-format user
// files that the parsers and loaders are tested against.
package conformance

import (
	"os"
	"path/filepath"
	"testing"
)

// AlmaDir returns the shared/conformance/alma folder, found by walking up
// from the working directory. Without it the test is skipped, except when
// CI is "true": there the files are required and the test fails.
func AlmaDir(tb testing.TB) string {
	tb.Helper()
	if dir := Find(); dir != "" {
		return dir
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("shared/conformance/alma was not found above the working directory: CI needs the conformance files")
	}
	tb.Skip("shared/conformance/alma was not found above the working directory")
	return ""
}

// Find returns the shared/conformance/alma folder, or "" when there is
// none above the working directory (for fuzz seeds, which are optional).
func Find() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(dir, "shared", "conformance", "alma")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
