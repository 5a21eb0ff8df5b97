package sis

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// zipEntry is a file to put in a test zip; a name ending in "/" is a
// directory.
type zipEntry struct{ name, body string }

func makeZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(f, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func usersDoc(ids ...string) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users>\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "<user><primary_id>%s</primary_id></user>\n", id)
	}
	b.WriteString("</users>\n")
	return b.String()
}

// spy is an inner format that records what the zip hands it.
type spy struct {
	files int
	bytes int64
}

func (*spy) Name() string { return "spy" }

func (s *spy) Decode(_ context.Context, r io.Reader, _ func(Record) error) error {
	s.files++
	n, err := io.Copy(io.Discard, r)
	s.bytes += n
	return err
}

// isLimit checks that err is a *LimitError on the named limit.
func isLimit(t testing.TB, err error, limit string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != limit {
		t.Fatalf("error %v, want a *LimitError on %s", err, limit)
	}
	if !strings.Contains(err.Error(), limit) {
		t.Errorf("error %q does not name %s", err, limit)
	}
}

func TestZipReadsItsXMLFilesInNameOrder(t *testing.T) {
	data := makeZip(t,
		zipEntry{"part2.xml", usersDoc("c", "d")},
		zipEntry{"exports/", ""},
		zipEntry{"exports/Part3.XML", "<userRecords>\n<user><primary_id>e</primary_id>\n</userRecords>"},
		zipEntry{"part1.xml", usersDoc("a", "b")},
		zipEntry{"__MACOSX/._part1.xml", "\x00\x05\x16\x07 resource fork"},
		zipEntry{".hidden.xml", "not even XML"},
		zipEntry{"exports/.DS_Store", "junk"},
		zipEntry{"readme.txt", "users of May"},
		zipEntry{"users.json", `{"user": []}`},
	)
	want := []string{
		"exports/Part3.XML line 2: error",
		"part1.xml line 3: a", "part1.xml line 4: b",
		"part2.xml line 3: c", "part2.xml line 4: d",
	}
	check := func(t *testing.T, r io.Reader) {
		recs, err := decodeAll(t, Zip(XML(Limits{}), Limits{}), r)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rec := range recs {
			if rec.Err != nil {
				got = append(got, rec.Ref+": error")
				continue
			}
			got = append(got, rec.Ref+": "+rec.User.PrimaryID)
		}
		eq(t, "records", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Run("from a stream, spooled to a temporary file", func(t *testing.T) {
		check(t, bytes.NewReader(data))
		if left := spoolFiles(tmp); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
	t.Run("from an *os.File, read in place", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "users.zip")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		check(t, f)
		if left := spoolFiles(tmp); len(left) != 0 {
			t.Errorf("temporary files made for an *os.File: %v", left)
		}
	})
	t.Run("detected by its name", func(t *testing.T) {
		f, err := BuiltinFormats().Detect("May users.ZIP", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "name", f.Name(), "zip")
		check(t, bytes.NewReader(data))
	})
}

func TestZipWithNoXMLFilesIsEmpty(t *testing.T) {
	recs, err := decodeAll(t, Zip(XML(Limits{}), Limits{}), bytes.NewReader(makeZip(t, zipEntry{"notes.txt", "x"})))
	if err != nil || len(recs) != 0 {
		t.Errorf("%d records, %v; want none", len(recs), err)
	}
}

func TestZipRefusesWhatIsNotAZip(t *testing.T) {
	for name, data := range map[string]string{
		"xml":   usersDoc("a"),
		"empty": "",
		"cut":   string(makeZip(t, zipEntry{"a.xml", usersDoc("a")})[:40]),
	} {
		recs, err := decodeAll(t, Zip(XML(Limits{}), Limits{}), strings.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), "not a zip file") || len(recs) != 0 {
			t.Errorf("%s: %d records, error %v; want a 'not a zip file' refusal", name, len(recs), err)
		}
	}
}

func TestZipFailsWhenAFileInItIsNotXML(t *testing.T) {
	data := makeZip(t, zipEntry{"a.xml", usersDoc("a")}, zipEntry{"b.xml", `{"user": []}`})
	_, err := decodeAll(t, Zip(XML(Limits{}), Limits{}), bytes.NewReader(data))
	if err == nil || !strings.Contains(err.Error(), "b.xml") || !strings.Contains(err.Error(), "not an XML file") {
		t.Errorf("error %v, want one naming b.xml", err)
	}
}

func TestZipLimitOnFiles(t *testing.T) {
	var entries []zipEntry
	for i := range 11 {
		entries = append(entries, zipEntry{fmt.Sprintf("p%02d.xml", i), usersDoc("a")})
	}
	s := &spy{}
	_, err := decodeAll(t, Zip(s, Limits{MaxZipFiles: 10}), bytes.NewReader(makeZip(t, entries...)))
	isLimit(t, err, "MaxZipFiles")
	eq(t, "files read", s.files, 0)
	if _, err := decodeAll(t, Zip(XML(Limits{}), Limits{MaxZipFiles: 11}), bytes.NewReader(makeZip(t, entries...))); err != nil {
		t.Errorf("11 files under MaxZipFiles = 11: %v", err)
	}
}

func TestZipEntryCountIsReadBeforeTheDirectory(t *testing.T) {
	// More than 65,535 files: the count is in the zip64 record.
	const files = 70_000
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := range files {
		if _, err := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprint(i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	n, ok := zipEntryCount(bytes.NewReader(data), int64(len(data)))
	if !ok || n != files {
		t.Fatalf("zipEntryCount = %d, %v; want %d", n, ok, files)
	}
	small := makeZip(t, zipEntry{"a.xml", "x"}, zipEntry{"b.xml", "y"})
	if n, ok := zipEntryCount(bytes.NewReader(small), int64(len(small))); !ok || n != 2 {
		t.Fatalf("zipEntryCount = %d, %v; want 2", n, ok)
	}
	_, err := decodeAll(t, Zip(&spy{}, Limits{MaxZipFiles: 1000}), bytes.NewReader(data))
	isLimit(t, err, "MaxZipFiles")
}

// zerosDeflated is a deflate stream of mib MiB of zeros, built fast: one
// MiB compressed, flushed, and its block repeated (a block of zeros
// compresses to the same bytes whatever zeros came before).
func zerosDeflated(t testing.TB, mib int) []byte {
	t.Helper()
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	var blocks [][]byte
	for range 3 {
		fw.Write(zeros)
		fw.Flush()
		blocks = append(blocks, bytes.Clone(b.Bytes()))
		b.Reset()
	}
	fw.Close()
	end := bytes.Clone(b.Bytes())
	if !bytes.Equal(blocks[1], blocks[2]) {
		t.Fatal("flushed blocks of zeros differ: cannot build the stream by repetition")
	}
	var out bytes.Buffer
	out.Write(blocks[0])
	for range mib - 1 {
		out.Write(blocks[1])
	}
	out.Write(end)
	return out.Bytes()
}

// zipBomb is a zip whose bomb.xml inflates to mib MiB of zeros.
func zipBomb(t testing.TB, mib int) []byte {
	t.Helper()
	stream := zerosDeflated(t, mib)
	crc := uint32(0)
	zeros := make([]byte, 1<<20)
	for range mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateRaw(&zip.FileHeader{Name: "bomb.xml", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(stream)), UncompressedSize64: uint64(mib) << 20})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(stream)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestZipBombIsRefusedBeforeItInflates(t *testing.T) {
	bomb := zipBomb(t, 200)
	t.Logf("200 MiB of zeros in a zip of %d bytes", len(bomb))

	// The stream is real: a small one inflates to what it says.
	small := zerosDeflated(t, 3)
	n, err := io.Copy(io.Discard, flate.NewReader(bytes.NewReader(small)))
	if err != nil || n != 3<<20 {
		t.Fatalf("a 3 MiB stream inflates to %d bytes, %v", n, err)
	}

	for _, c := range []struct {
		limits Limits
		limit  string
	}{
		{Limits{}, "MaxZipRatio"},
		{Limits{MaxZipRatio: 1 << 20, MaxZipBytes: 100 << 20}, "MaxZipBytes"},
	} {
		s := &spy{}
		start := time.Now()
		_, err := decodeAll(t, Zip(s, c.limits), bytes.NewReader(bomb))
		isLimit(t, err, c.limit)
		if s.files != 0 || s.bytes != 0 {
			t.Errorf("%s: %d bytes inflated before the refusal", c.limit, s.bytes)
		}
		t.Logf("%s: refused in %v: %v", c.limit, time.Since(start), err)
	}
}

// TestZipLimitsHoldWhenHeadersLie: a header may claim a small file; the
// bytes actually inflated are counted all the same.
func TestZipLimitsHoldWhenHeadersLie(t *testing.T) {
	stream := zerosDeflated(t, 8)
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.CreateRaw(&zip.FileHeader{Name: "liar.xml", Method: zip.Deflate,
		CompressedSize64: uint64(len(stream)), UncompressedSize64: 100})
	f.Write(stream)
	w.Close()
	s := &spy{}
	_, err := decodeAll(t, Zip(s, Limits{}), bytes.NewReader(b.Bytes()))
	if err == nil || !strings.Contains(err.Error(), "liar.xml is damaged") || s.bytes > 100 {
		t.Errorf("a header claiming 100 bytes: %d bytes read, error %v", s.bytes, err)
	}

	// The guard itself, whatever archive/zip checks: it stops the reading
	// at the ratio of the compressed size, and at the zip's total.
	zeros := func() io.Reader { return io.LimitReader(zeroReader{}, 1<<30) }
	total := int64(0)
	g := &zipGuard{r: zeros(), z: Zip(nil, Limits{}).(zipFormat), f: &zip.File{FileHeader: zip.FileHeader{Name: "x.xml", CompressedSize64: 1000}}, total: &total}
	n, err := io.Copy(io.Discard, g)
	isLimit(t, err, "MaxZipRatio")
	if n > 200*1000 {
		t.Errorf("%d bytes passed a ratio of 200 on 1000 compressed bytes", n)
	}
	total = 0
	g = &zipGuard{r: zeros(), z: Zip(nil, Limits{MaxZipBytes: 50_000}).(zipFormat), f: &zip.File{FileHeader: zip.FileHeader{Name: "x.xml", CompressedSize64: 1000}}, total: &total}
	n, err = io.Copy(io.Discard, g)
	isLimit(t, err, "MaxZipBytes")
	if n > 50_000 {
		t.Errorf("%d bytes passed MaxZipBytes = 50000", n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestZipLimitOnTheZipItself(t *testing.T) {
	data := makeZip(t, zipEntry{"a.xml", strings.Repeat(" ", 5000) + usersDoc("a")})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := decodeAll(t, Zip(XML(Limits{}), Limits{MaxZipBytes: 100}), bytes.NewReader(data))
	isLimit(t, err, "MaxZipBytes")
	if left := spoolFiles(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// spoolFiles lists the zip spool files in dir.
func spoolFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "patronkit-sis-*"))
	return m
}

func TestZipStopsWhenEmitFails(t *testing.T) {
	data := makeZip(t, zipEntry{"a.xml", usersDoc("a", "b")}, zipEntry{"b.xml", usersDoc("c")})
	stop := errors.New("stop")
	n := 0
	err := Zip(XML(Limits{}), Limits{}).Decode(context.Background(), bytes.NewReader(data), func(Record) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("got %v after %d records, want the emit error itself after 1", err, n)
	}
}
