package sis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DropFolder is a Source over a folder the SIS (or a transfer job) writes its
// export files into, on a disk the library's server can reach.
//
// List offers the regular files directly in dir, oldest first (by
// modification time, then name). It leaves out subfolders, symbolic links,
// dot files and files whose names end in .part or .tmp, the names writers
// use while a file is still being written: a writer should write under such
// a name and rename the file when it is complete.
//
// Done moves a file into dir/processed (ok) or dir/failed (not ok), creating
// them with dir's permissions. A file of the same name already there is
// never overwritten: the file moved in gets a timestamp before its
// extension, users.20260901T020000Z.xml.
//
// Two instances of the host may share the folder. A move is a rename, so
// only one of them moves a file; the other's Done returns an error that
// matches fs.ErrNotExist (errors.Is), which tells it another instance took
// the file.
//
// Names given to Open and Done must be names List offers; anything else
// (a path, "..", a dot file) is refused with an error that matches
// fs.ErrInvalid. DropFolder fails when name is empty or dir is not a
// folder.
func DropFolder(name, dir string) (Source, error) {
	if name == "" {
		return nil, errors.New("sis: a drop folder needs a name")
	}
	if dir == "" {
		return nil, fmt.Errorf("sis: drop folder %s: no folder given", name)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", name, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", name, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("sis: drop folder %s: %s is not a folder", name, dir)
	}
	return &dropFolder{name: name, dir: abs}, nil
}

// dropFolder is the Source DropFolder returns. It keeps no state beyond its
// configuration, so it is safe for concurrent use.
type dropFolder struct {
	name string
	dir  string // absolute
}

func (d *dropFolder) Name() string { return d.name }

func (d *dropFolder) List(ctx context.Context) ([]File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	files := []File{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !offeredName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away since ReadDir, by another instance
		}
		if err != nil {
			return nil, fmt.Errorf("sis: drop folder %s: %w", d.name, err)
		}
		files = append(files, File{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	SortFiles(files)
	return files, nil
}

func (d *dropFolder) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckFileName(name); err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	p := filepath.Join(d.dir, name)
	if fi, err := os.Lstat(p); err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sis: drop folder %s: %s is not a file: %w", d.name, name, fs.ErrInvalid)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	return f, nil
}

func (d *dropFolder) Done(ctx context.Context, name string, ok bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckFileName(name); err != nil {
		return fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	from := filepath.Join(d.dir, name)
	fi, err := os.Lstat(from)
	if errors.Is(err, fs.ErrNotExist) {
		return d.gone(name)
	}
	if err != nil {
		return fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sis: drop folder %s: %s is not a file: %w", d.name, name, fs.ErrInvalid)
	}

	aside := filepath.Join(d.dir, asideFolder(ok))
	perm := fs.FileMode(0o750)
	if di, err := os.Stat(d.dir); err == nil {
		perm = di.Mode().Perm()
	}
	if err := os.MkdirAll(aside, perm); err != nil {
		return fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	to, err := AsideName(name, time.Now(), func(n string) (bool, error) {
		_, err := os.Lstat(filepath.Join(aside, n))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	if err := os.Rename(from, filepath.Join(aside, to)); err != nil {
		if _, serr := os.Lstat(from); errors.Is(serr, fs.ErrNotExist) {
			return d.gone(name)
		}
		return fmt.Errorf("sis: drop folder %s: %w", d.name, err)
	}
	return nil
}

// gone is Done's error for a file that is no longer in the folder.
func (d *dropFolder) gone(name string) error {
	return fmt.Errorf("sis: drop folder %s: %s is no longer in the folder (another instance may have taken it): %w",
		d.name, name, fs.ErrNotExist)
}

// The rules below are shared by the drop folder and every source that
// offers the files of a folder (adapters/sftp, a host's own).

// offeredName reports whether a source lists a file of this name.
func offeredName(name string) bool {
	return CheckFileName(name) == nil
}

// CheckFileName refuses the names a folder source never lists (an empty
// name, a path, a dot file, a file still being written: .part or .tmp), so
// that Open and Done cannot be led outside the source's folder. The error
// wraps fs.ErrInvalid.
func CheckFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty file name: %w", fs.ErrInvalid)
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) || name != filepath.Base(name):
		return fmt.Errorf("file name %q is not a plain name: %w", name, fs.ErrInvalid)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("file name %q starts with a dot: %w", name, fs.ErrInvalid)
	}
	lower := strings.ToLower(name)
	if strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".tmp") {
		return fmt.Errorf("file name %q is a file still being written: %w", name, fs.ErrInvalid)
	}
	return nil
}

// SortFiles puts files oldest first, by modification time then name, the
// order List returns them in.
func SortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// asideFolder is the subfolder Done moves a file into.
func asideFolder(ok bool) string {
	if ok {
		return "processed"
	}
	return "failed"
}

// AsideName is the name a file moved aside (by Done) gets: its own, or, when taken,
// its own with a timestamp (and a counter, if need be) before the
// extension: users.xml, users.20260901T020000Z.xml,
// users.20260901T020000Z-2.xml.
func AsideName(name string, now time.Time, taken func(string) (bool, error)) (string, error) {
	if t, err := taken(name); err != nil || !t {
		return name, err
	}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	stamp := now.UTC().Format("20060102T150405Z")
	for i := 1; i <= 1000; i++ {
		n := stem + "." + stamp + ext
		if i > 1 {
			n = fmt.Sprintf("%s.%s-%d%s", stem, stamp, i, ext)
		}
		t, err := taken(n)
		if err != nil {
			return "", err
		}
		if !t {
			return n, nil
		}
	}
	return "", fmt.Errorf("no free name to move %s aside: %w", name, fs.ErrExist)
}
