package sis

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// dropFile writes a file into dir with the given modification time.
func dropFile(t *testing.T, dir, name, content string, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func listedSourceNames(t *testing.T, src Source) []string {
	t.Helper()
	files, err := src.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	names := []string{}
	for _, f := range files {
		names = append(names, f.Name)
	}
	return names
}

func readSourceFile(t *testing.T, src Source, name string) string {
	t.Helper()
	rc, err := src.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func TestDropFolderRefusesAMissingFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.xml")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", filepath.Join(dir, "nope"), file} {
		if _, err := DropFolder("campus", d); err == nil {
			t.Errorf("DropFolder(%q) = nil error", d)
		}
	}
	if _, err := DropFolder("", dir); err == nil {
		t.Error("DropFolder without a name = nil error")
	}
	src, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != "campus" {
		t.Errorf("Name = %q", src.Name())
	}
}

func TestDropFolderListsOldestFirstAndSkipsPartialFiles(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 9, 1, 2, 0, 0, 0, time.UTC)
	dropFile(t, dir, "c.xml", "c", base.Add(-time.Hour))
	dropFile(t, dir, "b.csv", "b", base)
	dropFile(t, dir, "a.csv", "a", base) // same time as b: by name
	dropFile(t, dir, "z.zip", "z", base.Add(-2*time.Hour))
	// Still being written, hidden, or not a file: never offered.
	dropFile(t, dir, "d.xml.part", "partial", base.Add(-3*time.Hour))
	dropFile(t, dir, "e.xml.tmp", "partial", base.Add(-3*time.Hour))
	dropFile(t, dir, "f.XML.PART", "partial", base.Add(-3*time.Hour))
	dropFile(t, dir, ".g.xml", "hidden", base.Add(-3*time.Hour))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	dropFile(t, filepath.Join(dir, "sub"), "h.xml", "nested", base.Add(-3*time.Hour))
	if err := os.Symlink(filepath.Join(dir, "c.xml"), filepath.Join(dir, "link.xml")); err != nil {
		t.Fatal(err)
	}

	src, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := src.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if want := []string{"z.zip", "c.xml", "a.csv", "b.csv"}; !slices.Equal(names, want) {
		t.Fatalf("List = %v, want %v", names, want)
	}
	if files[0].Size != 1 || !files[0].ModTime.Equal(base.Add(-2*time.Hour)) {
		t.Errorf("z.zip listed as %+v", files[0])
	}
	if got := readSourceFile(t, src, "c.xml"); got != "c" {
		t.Errorf("Open c.xml read %q", got)
	}

	// An empty folder lists nothing, not an error.
	empty, err := DropFolder("empty", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if names := listedSourceNames(t, empty); len(names) != 0 {
		t.Errorf("empty folder lists %v", names)
	}
}

func TestDropFolderDoneMovesFilesAside(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	dropFile(t, dir, "good.xml", "good", now.Add(-2*time.Minute))
	dropFile(t, dir, "bad.xml", "bad", now.Add(-time.Minute))
	src, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Done(ctx, "good.xml", true); err != nil {
		t.Fatal(err)
	}
	if err := src.Done(ctx, "bad.xml", false); err != nil {
		t.Fatal(err)
	}
	if names := listedSourceNames(t, src); len(names) != 0 {
		t.Errorf("after Done List = %v", names)
	}
	for p, want := range map[string]string{"processed/good.xml": "good", "failed/bad.xml": "bad"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}

	// The same name again, twice: nothing already there is overwritten.
	for i, content := range []string{"second", "third"} {
		dropFile(t, dir, "good.xml", content, now)
		if err := src.Done(ctx, "good.xml", true); err != nil {
			t.Fatalf("Done #%d: %v", i+2, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "processed"))
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "processed", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		contents[string(b)] = true
		if filepath.Ext(e.Name()) != ".xml" {
			t.Errorf("moved aside as %s: the extension is lost", e.Name())
		}
	}
	if len(entries) != 3 || !contents["good"] || !contents["second"] || !contents["third"] {
		t.Errorf("processed holds %d files with %v, want good, second and third", len(entries), contents)
	}
}

func TestDropFolderDoneOfAFileAnotherInstanceTook(t *testing.T) {
	dir := t.TempDir()
	dropFile(t, dir, "users.xml", "u", time.Now())
	a, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Done(ctx, "users.xml", true); err != nil {
		t.Fatal(err)
	}
	err = b.Done(ctx, "users.xml", false)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Done = %v, want an fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "failed", "users.xml")); err == nil {
		t.Error("the second Done moved something into failed")
	}

	// Racing: exactly one instance moves each file.
	for i := range 20 {
		dropFile(t, dir, "race.csv", "r", time.Now())
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, src := range []Source{a, b} {
			wg.Go(func() { errs[j] = src.Done(ctx, "race.csv", true) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, fs.ErrNotExist):
				t.Fatalf("round %d: Done = %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d instances moved the file", i, won)
		}
	}
}

func TestDropFolderRefusesBadNames(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "drop")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	dropFile(t, parent, "secret.xml", "outside", time.Now())
	dropFile(t, dir, ".hidden", "h", time.Now())
	dropFile(t, dir, "half.xml.part", "p", time.Now())
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	src, err := DropFolder("campus", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := []string{"", ".", "..", "../secret.xml", "sub/x.xml", `sub\x.xml`, "/etc/passwd",
		filepath.Join(parent, "secret.xml"), ".hidden", "half.xml.part", "x.tmp", "a\x00b"}
	for _, name := range bad {
		if rc, err := src.Open(ctx, name); err == nil {
			rc.Close()
			t.Errorf("Open(%q) allowed", name)
		} else if !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want an fs.ErrInvalid", name, err)
		}
		if err := src.Done(ctx, name, true); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Done(%q) = %v, want an fs.ErrInvalid", name, err)
		}
	}
	// A subfolder's name is plain, but it is not a file.
	if _, err := src.Open(ctx, "sub"); err == nil {
		t.Error("Open of a subfolder allowed")
	}
	if err := src.Done(ctx, "sub", true); err == nil {
		t.Error("Done of a subfolder allowed")
	}
	if _, err := src.Open(ctx, "missing.xml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file = %v, want an fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "secret.xml")); err != nil {
		t.Errorf("the file outside the folder was moved: %v", err)
	}
	for _, p := range []string{"processed", "failed"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("a refused Done created %s", p)
		}
	}
}

func TestDropFolderHonoursTheContext(t *testing.T) {
	src, err := DropFolder("campus", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List = %v", err)
	}
	if _, err := src.Open(ctx, "a.xml"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open = %v", err)
	}
	if err := src.Done(ctx, "a.xml", true); !errors.Is(err, context.Canceled) {
		t.Errorf("Done = %v", err)
	}
}

func TestAsideName(t *testing.T) {
	now := time.Date(2026, 9, 1, 4, 5, 6, 0, time.FixedZone("CEST", 2*3600))
	taken := map[string]bool{}
	isTaken := func(n string) (bool, error) { return taken[n], nil }
	var got []string
	for _, name := range []string{"users.xml", "users.xml", "users.xml", "README", "README"} {
		n, err := AsideName(name, now, isTaken)
		if err != nil {
			t.Fatal(err)
		}
		taken[n] = true
		got = append(got, n)
	}
	want := []string{"users.xml", "users.20260901T020506Z.xml", "users.20260901T020506Z-2.xml", "README", "README.20260901T020506Z"}
	if !slices.Equal(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
}
