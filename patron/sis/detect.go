package sis

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// FileFormat is a file format SIS runs can read: the name a profile
// chooses it by, the file name endings it reads when a profile names no
// format, and the Format that reads such a file within the limits in
// force. A host adds a format of its own by listing it beside the built-in
// ones (patronkit.Config.SISFormats).
type FileFormat struct {
	// Name is the code profiles name the format by (lower case): xml,
	// zip, json, csv.
	Name string
	// Extensions are the file name endings read with this format when the
	// profile names none (".xml"); case does not matter. May be empty: the
	// format is then used only by profiles that name it.
	Extensions []string
	// Reader returns the Format for the limits in force.
	Reader func(Limits) Format
}

// Formats is the list of file formats a Service reads.
type Formats []FileFormat

// BuiltinFormats are the formats of this package: xml (Alma's SIS user
// XML), zip (a zip file of such XML files), json (Alma's user JSON) and
// csv (the documented CSV, csv.md).
func BuiltinFormats() Formats {
	return Formats{
		{Name: "xml", Extensions: []string{".xml"}, Reader: XML},
		{Name: "zip", Extensions: []string{".zip"}, Reader: func(l Limits) Format { return Zip(XML(l), l) }},
		{Name: "json", Extensions: []string{".json"}, Reader: JSON},
		{Name: "csv", Extensions: []string{".csv"}, Reader: CSV},
	}
}

// check refuses a list with a format without name or reader, or with a
// name or an extension claimed twice.
func (fs Formats) check() error {
	names, exts := map[string]bool{}, map[string]string{}
	for _, f := range fs {
		name := strings.ToLower(strings.TrimSpace(f.Name))
		switch {
		case name == "" || f.Reader == nil:
			return errors.New("sis: a file format needs a name and a reader")
		case name != f.Name:
			return fmt.Errorf("sis: file format %q: write its name in lower case without spaces", f.Name)
		case names[name]:
			return fmt.Errorf("sis: two file formats are named %q", name)
		}
		names[name] = true
		for _, e := range f.Extensions {
			key := normalizeExt(e)
			if key == "." {
				return fmt.Errorf("sis: file format %q has an empty extension", name)
			}
			if other, taken := exts[key]; taken {
				return fmt.Errorf("sis: file formats %q and %q both read %s files", other, name, key)
			}
			exts[key] = name
		}
	}
	return nil
}

// Named returns the format a profile names.
func (fs Formats) Named(name string, l Limits) (Format, error) {
	for _, f := range fs {
		if f.Name == name {
			return f.Reader(l), nil
		}
	}
	return nil, fmt.Errorf("sis: no file format is named %q (known: %s)", name, strings.Join(fs.names(), ", "))
}

// Detect returns the format that reads a file of that name, chosen by its
// extension (case does not matter). A name whose extension no format
// claims is an error that lists the known ones.
func (fs Formats) Detect(name string, l Limits) (Format, error) {
	ext := filepath.Ext(name)
	key := normalizeExt(ext)
	for _, f := range fs {
		for _, e := range f.Extensions {
			if normalizeExt(e) == key {
				return f.Reader(l), nil
			}
		}
	}
	if ext == "" {
		return nil, fmt.Errorf("sis: %q has no file extension to tell its format (known: %s)", name, fs.extensions())
	}
	return nil, fmt.Errorf("sis: %q: no format reads %s files (known: %s)", name, ext, fs.extensions())
}

func (fs Formats) names() []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

// extensions lists the extensions, sorted, for error messages.
func (fs Formats) extensions() string {
	var exts []string
	for _, f := range fs {
		for _, e := range f.Extensions {
			exts = append(exts, normalizeExt(e))
		}
	}
	slices.Sort(exts)
	return strings.Join(exts, ", ")
}

// normalizeExt writes an extension lower case, with its leading dot.
func normalizeExt(ext string) string {
	return "." + strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ext), "."))
}
