package sis

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// registry holds the formats Detect knows, by file extension (".xml").
var registry = struct {
	sync.RWMutex
	m map[string]func(Limits) Format
}{m: map[string]func(Limits) Format{}}

// Register makes a file format known to Detect: files whose name ends in ext
// (".xml" or "xml"; case does not matter) are read with the Format f returns
// for the limits in force. The formats of this package register themselves
// when it is loaded; a host may register a format of its own the same way,
// from an init function.
//
// Register panics if ext is empty, f is nil or ext is already registered.
func Register(ext string, f func(Limits) Format) {
	key := normalizeExt(ext)
	if key == "." || f == nil {
		panic(fmt.Sprintf("sis: Register(%q): an extension and a format are required", ext))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, taken := registry.m[key]; taken {
		panic(fmt.Sprintf("sis: Register(%q): a format is already registered for %s", ext, key))
	}
	registry.m[key] = f
}

// Detect returns the format that reads a file of that name, chosen by its
// extension: ".xml" is Alma's user XML, ".zip" a zip file of such XML files,
// and so on for every registered format. Case does not matter. A name whose
// extension no format claims is an error that lists the known ones.
func Detect(name string, l Limits) (Format, error) {
	ext := filepath.Ext(name)
	registry.RLock()
	f, ok := registry.m[normalizeExt(ext)]
	registry.RUnlock()
	switch {
	case ok:
		return f(l), nil
	case ext == "":
		return nil, fmt.Errorf("sis: %q has no file extension to tell its format (known: %s)", name, knownExts())
	default:
		return nil, fmt.Errorf("sis: %q: no format reads %s files (known: %s)", name, ext, knownExts())
	}
}

// knownExts lists the registered extensions, sorted, for error messages.
func knownExts() string {
	registry.RLock()
	exts := make([]string, 0, len(registry.m))
	for ext := range registry.m {
		exts = append(exts, ext)
	}
	registry.RUnlock()
	slices.Sort(exts)
	return strings.Join(exts, ", ")
}

// normalizeExt writes an extension the way the registry keys it: lower
// case, with its leading dot.
func normalizeExt(ext string) string {
	return "." + strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ext), "."))
}
