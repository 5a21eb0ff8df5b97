package sis

import (
	"archive/zip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strings"
)

// Zip returns the format of a zip file of SIS files: each file in it whose
// name ends in ".xml" (in any case) is read with inner, in name order.
// Directories, dot files and macOS's __MACOSX folder are skipped, and so
// are files of other types. Record.Ref names the file in the zip:
// "part2.xml line 3".
//
// The zip is read from disk: an *os.File is used as it is, and any other
// reader is first copied to a temporary file, removed afterwards, never
// into memory.
//
// The zip is refused as a whole with a *LimitError before any file in it
// is decompressed if it holds more than Limits.MaxZipFiles files, if it is
// itself larger than Limits.MaxZipBytes, if its headers announce more than
// MaxZipBytes of XML in all, or a file whose decompressed size is more than
// Limits.MaxZipRatio times its compressed size. Headers can lie, so both
// limits are also enforced on the bytes actually decompressed. A file that
// is not a zip, or a file in it that inner refuses, fails the whole zip.
func Zip(inner Format, l Limits) Format { return zipFormat{inner: inner, limits: l.withDefaults()} }

type zipFormat struct {
	inner  Format
	limits Limits
}

// Name is "zip".
func (zipFormat) Name() string { return "zip" }

// Decode reads the XML files of a zip, one after the other.
func (z zipFormat) Decode(ctx context.Context, r io.Reader, emit func(Record) error) error {
	ra, size, done, err := z.readerAt(r)
	if err != nil {
		return err
	}
	defer done()

	if n, ok := zipEntryCount(ra, size); ok && n > uint64(z.limits.MaxZipFiles) {
		return z.tooManyFiles(n)
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("sis: zip: not a zip file: %w", err)
	}
	if len(zr.File) > z.limits.MaxZipFiles {
		return z.tooManyFiles(uint64(len(zr.File)))
	}

	files, err := z.xmlFiles(zr)
	if err != nil {
		return err
	}
	var total int64 // bytes decompressed so far, all files
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := z.decodeFile(ctx, f, &total, emit); err != nil {
			return err
		}
	}
	return nil
}

// readerAt gives random access to the zip: r itself if it is a regular
// file, else a temporary copy. done releases the copy.
func (z zipFormat) readerAt(r io.Reader) (ra io.ReaderAt, size int64, done func(), err error) {
	tooBig := func(n int64) error {
		return &LimitError{Limit: "MaxZipBytes", Value: z.limits.MaxZipBytes,
			What: fmt.Sprintf("the zip file itself (%d bytes)", n)}
	}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, 0, nil, err
			}
			size := fi.Size() - off
			if size > z.limits.MaxZipBytes {
				return nil, 0, nil, tooBig(size)
			}
			return io.NewSectionReader(f, off, size), size, func() {}, nil
		}
	}
	tmp, err := os.CreateTemp("", "patronkit-sis-*.zip")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("sis: zip: spooling the upload: %w", err)
	}
	done = func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, io.LimitReader(r, z.limits.MaxZipBytes+1))
	switch {
	case err != nil:
		err = fmt.Errorf("sis: zip: spooling the upload: %w", err)
	case n > z.limits.MaxZipBytes:
		err = tooBig(n)
	}
	if err != nil {
		done()
		return nil, 0, nil, err
	}
	return tmp, n, done, nil
}

func (z zipFormat) tooManyFiles(n uint64) error {
	return &LimitError{Limit: "MaxZipFiles", Value: int64(z.limits.MaxZipFiles),
		What: fmt.Sprintf("a zip of %d files", n)}
}

// xmlFiles picks the XML files of the zip, in name order, and checks what
// their headers announce against the limits.
func (z zipFormat) xmlFiles(zr *zip.Reader) ([]*zip.File, error) {
	var files []*zip.File
	var announced uint64
	for _, f := range zr.File {
		if !isZipXML(f) {
			continue
		}
		if ratioOver(f.UncompressedSize64, f.CompressedSize64, z.limits.MaxZipRatio) {
			return nil, z.ratioError(f, fmt.Sprintf("announces %d bytes", f.UncompressedSize64))
		}
		announced += f.UncompressedSize64
		if announced > uint64(z.limits.MaxZipBytes) || announced < f.UncompressedSize64 {
			return nil, &LimitError{Limit: "MaxZipBytes", Value: z.limits.MaxZipBytes,
				What: fmt.Sprintf("the XML files in the zip (their headers announce %d bytes or more, up to %s)", announced, f.Name)}
		}
		files = append(files, f)
	}
	slices.SortStableFunc(files, func(a, b *zip.File) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}

// isZipXML reports whether a zip entry is an XML file to read: not a
// directory, not in __MACOSX, not a dot file.
func isZipXML(f *zip.File) bool {
	name := strings.ReplaceAll(f.Name, "\\", "/")
	if f.FileInfo().IsDir() || strings.HasSuffix(name, "/") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == "__MACOSX" || strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return false
		}
	}
	return strings.EqualFold(path.Ext(name), ".xml")
}

// ratioOver reports whether out bytes from in compressed bytes break the
// ratio.
func ratioOver(out, in uint64, ratio int64) bool {
	if out == 0 {
		return false
	}
	if in == 0 {
		return true
	}
	return out/in > uint64(ratio) || out/in == uint64(ratio) && out%in > 0
}

// ratioError refuses a file whose size (as its header announces it, or as
// counted) is too large for its compressed size.
func (z zipFormat) ratioError(f *zip.File, size string) *LimitError {
	return &LimitError{Limit: "MaxZipRatio", Value: z.limits.MaxZipRatio,
		What: fmt.Sprintf("%s in the zip (%s from %d compressed)", f.Name, size, f.CompressedSize64)}
}

// decodeFile reads one XML file of the zip with the inner format.
func (z zipFormat) decodeFile(ctx context.Context, f *zip.File, total *int64, emit func(Record) error) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("sis: zip: %s: %w", f.Name, err)
	}
	defer rc.Close()
	g := &zipGuard{r: rc, z: z, f: f, total: total}
	var emitErr error
	err = z.inner.Decode(ctx, g, func(rec Record) error {
		rec.Ref = f.Name + " " + rec.Ref
		emitErr = emit(rec)
		return emitErr
	})
	switch {
	case g.limit != nil:
		return g.limit
	case emitErr != nil:
		return emitErr
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrChecksum):
		return fmt.Errorf("sis: zip: %s is damaged: its data does not match its header: %w", f.Name, err)
	case err != nil:
		return fmt.Errorf("sis: zip: %s: %w", f.Name, err)
	}
	return nil
}

// zipGuard counts the bytes decompressed from one file of a zip and stops
// the reading when they break MaxZipRatio for that file or MaxZipBytes for
// the whole zip, whatever the headers said.
type zipGuard struct {
	r     io.Reader
	z     zipFormat
	f     *zip.File
	n     uint64 // bytes from this file
	total *int64 // bytes from the whole zip
	limit *LimitError
}

func (g *zipGuard) Read(p []byte) (int, error) {
	if g.limit != nil {
		return 0, g.limit
	}
	n, err := g.r.Read(p)
	g.n += uint64(n)
	*g.total += int64(n)
	switch {
	case ratioOver(g.n, g.f.CompressedSize64, g.z.limits.MaxZipRatio):
		g.limit = g.z.ratioError(g.f, fmt.Sprintf("inflates to %d bytes or more", g.n))
	case *g.total > g.z.limits.MaxZipBytes:
		g.limit = &LimitError{Limit: "MaxZipBytes", Value: g.z.limits.MaxZipBytes,
			What: fmt.Sprintf("the XML files in the zip (they inflate to %d bytes or more, up to %s)", *g.total, g.f.Name)}
	}
	if g.limit != nil {
		return 0, g.limit
	}
	return n, err
}

// zipEntryCount reads how many files a zip says it holds from its end of
// central directory record, before archive/zip reads (and allocates) the
// whole directory. ok is false if the record is not found; archive/zip
// then judges the file.
func zipEntryCount(ra io.ReaderAt, size int64) (n uint64, ok bool) {
	const (
		eocdLen       = 22
		eocdSig       = 0x06054b50
		locatorLen    = 20
		locatorSig    = 0x07064b50
		eocd64Len     = 56
		eocd64Sig     = 0x06064b50
		maxCommentLen = math.MaxUint16
	)
	tail := min(size, eocdLen+maxCommentLen)
	if tail < eocdLen || size < eocd64Len {
		return 0, false
	}
	buf := make([]byte, tail)
	if _, err := ra.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return 0, false
	}
	for i := len(buf) - eocdLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) != eocdSig {
			continue
		}
		if count := binary.LittleEndian.Uint16(buf[i+10:]); count != math.MaxUint16 {
			return uint64(count), true
		}
		// Zip64: the locator just before the record points to the
		// zip64 record, which has the count.
		if i < locatorLen || binary.LittleEndian.Uint32(buf[i-locatorLen:]) != locatorSig {
			return 0, false
		}
		off := binary.LittleEndian.Uint64(buf[i-locatorLen+8:])
		if off > uint64(size-eocd64Len) {
			return 0, false
		}
		rec := make([]byte, eocd64Len)
		if _, err := ra.ReadAt(rec, int64(off)); err != nil || binary.LittleEndian.Uint32(rec) != eocd64Sig {
			return 0, false
		}
		return binary.LittleEndian.Uint64(rec[32:]), true
	}
	return 0, false
}
