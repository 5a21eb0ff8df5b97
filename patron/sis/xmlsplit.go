package sis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode"
)

// The streaming half of the XML format: the splitter cuts the file into
// user elements within Limits, one at a time, and hands each to
// a userReader (xml.go), which maps it to a patron.User.

const (
	xmlBufferSize = 64 << 10
	// maxKeptName is the longest element name kept to match end tags
	// against; longer names are not Alma's anyway.
	maxKeptName = 256
)

// A user is found in the byte stream by the splitter, not by encoding/xml:
// encoding/xml stops at the first syntax error, and one bad user must not
// lose the others. The splitter knows just enough XML to find where markup
// ends (tags with quoted attributes, comments, CDATA sections, processing
// instructions, DOCTYPE) and cuts the stream into user elements: from a
// <user> start tag to the next </user> end tag. A user element never holds
// another one, so a <user> start tag before the </user>, or the end tag of
// the element around the users, or the end of the file, ends a user that
// was not closed; the next user starts clean. Each user element is then
// decoded alone by encoding/xml, which checks it strictly.

// markupKind is the kind of markup the splitter has just read.
type markupKind int

const (
	mkBad     markupKind = iota // a '<' that starts no markup
	mkStart                     // <name ...> or <name .../>
	mkEnd                       // </name>
	mkComment                   // <!-- ... -->
	mkCDATA                     // <![CDATA[ ... ]]>
	mkPI                        // <?target ... ?>
	mkDecl                      // <!DOCTYPE ...>
)

// xmlSplitter cuts an XML stream into user elements and emits a Record for
// each one.
type xmlSplitter struct {
	r    *bufio.Reader
	lim  Limits
	ctx  context.Context
	emit func(Record) error

	line       int  // line of the next byte
	sawRoot    bool // an element has started: the prolog is over
	transcoded bool // the input is converted to UTF-8
	eof        bool // the input ended inside markup
	outer      []string
	steps      int

	// The markup just read: its bytes (at most tokCap of them are kept),
	// how many there were, its kind, element name and line.
	tok         []byte
	tokN        int64
	tokCap      int
	kind        markupKind
	name        []byte
	selfClosing bool
	markLine    int

	cur   *xmlChunk // the user being read, or nil
	chunk xmlChunk  // its storage, reused from user to user
	users userReader
}

// xmlChunk is one user element's bytes, as the splitter collects them.
type xmlChunk struct {
	line    int // line of the <user tag
	buf     []byte
	size    int64 // bytes of the element, kept or not
	over    bool  // size passed MaxUserBytes: buf is dropped
	depth   int   // elements open, the user included
	deepest int
}

// add appends bytes of the user element, n of which were read (p may have
// been cut short).
func (c *xmlChunk) add(p []byte, n int64, max int64) {
	c.size += n
	if c.over || c.size > max {
		c.over = true
		c.buf = c.buf[:0]
		return
	}
	c.buf = append(c.buf, p...)
}

// run reads the whole stream.
func (s *xmlSplitter) run() error {
	if err := s.byteOrderMark(); err != nil {
		return err
	}
	for !s.eof {
		if s.steps++; s.steps%1024 == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		more, err := s.text()
		if err != nil || !more {
			if err != nil {
				return err
			}
			break
		}
		if err := s.markup(); err != nil {
			return err
		}
		if s.cur != nil {
			err = s.inUser()
		} else {
			err = s.outside()
		}
		if err != nil {
			return err
		}
	}
	if s.cur != nil {
		if err := s.finish(false, "before the end of the file"); err != nil {
			return err
		}
	}
	if !s.sawRoot {
		return errors.New("sis: xml: not an XML file: it has no root element")
	}
	return nil
}

// byteOrderMark drops a UTF-8 byte order mark and converts UTF-16 to UTF-8.
func (s *xmlSplitter) byteOrderMark() error {
	b, err := s.r.Peek(3)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return err
	}
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		_, err = s.r.Discard(3)
		return err
	case bytes.HasPrefix(b, []byte("\xfe\xff")), bytes.HasPrefix(b, []byte("\xff\xfe")):
		dec := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()
		s.r = bufio.NewReaderSize(dec.Reader(s.r), xmlBufferSize)
		s.transcoded = true
	}
	return nil
}

// text reads character data up to and including the next '<'. It reports
// false at the end of the input.
func (s *xmlSplitter) text() (bool, error) {
	for {
		b, err := s.r.ReadSlice('<')
		data := b
		if err == nil {
			data = b[:len(b)-1]
		}
		if len(data) > 0 {
			s.line += bytes.Count(data, []byte{'\n'})
			if s.cur != nil {
				s.cur.add(data, int64(len(data)), s.lim.MaxUserBytes)
			} else if !s.sawRoot && len(bytes.TrimLeft(data, " \t\r\n")) > 0 {
				return false, notXML(data)
			}
		}
		switch err {
		case nil:
			return true, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return false, nil
		default:
			return false, err
		}
	}
}

// notXML is the error for a file whose prolog holds something no XML file
// starts with.
func notXML(data []byte) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	kind := ""
	switch {
	case bytes.HasPrefix(data, []byte("{")), bytes.HasPrefix(data, []byte("[")):
		kind = " (it looks like JSON)"
	case bytes.HasPrefix(data, []byte("%PDF")):
		kind = " (it looks like a PDF)"
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		kind = " (it looks like a zip file)"
	}
	if len(data) > 24 {
		data = data[:24]
	}
	return fmt.Errorf("sis: xml: not an XML file%s: it starts with %q", kind, data)
}

// getc reads one byte of markup.
func (s *xmlSplitter) getc() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if c == '\n' {
		s.line++
	}
	s.tokN++
	if len(s.tok) < s.tokCap {
		s.tok = append(s.tok, c)
	}
	return c, nil
}

// ungetc puts back the '<' that ends a broken piece of markup, so that it
// is read again as the start of the next one.
func (s *xmlSplitter) ungetc() {
	if s.r.UnreadByte() != nil {
		return
	}
	if int64(len(s.tok)) == s.tokN {
		s.tok = s.tok[:len(s.tok)-1]
	}
	s.tokN--
}

// stop ends the markup being read on a read error; the end of the input is
// not an error but ends the reading.
func (s *xmlSplitter) stop(err error) error {
	if err == io.EOF {
		s.eof = true
		return nil
	}
	return err
}

// markup reads the markup that follows a '<'.
func (s *xmlSplitter) markup() error {
	s.tok = append(s.tok[:0], '<')
	s.tokN = 1
	s.markLine = s.line
	s.kind, s.name, s.selfClosing = mkBad, s.name[:0], false
	c, err := s.getc()
	if err != nil {
		return s.stop(err)
	}
	switch {
	case c == '!':
		return s.bang()
	case c == '?':
		s.kind = mkPI
		term, err := s.readName(0)
		if err != nil || s.eof {
			return err
		}
		return s.until("?>", term)
	case c == '/':
		s.kind = mkEnd
		return s.tag(0)
	case isNameStart(c):
		s.kind = mkStart
		return s.tag(c)
	case c == '<':
		s.ungetc()
	}
	return nil
}

// bang reads the markup after "<!": a comment, a CDATA section or a
// declaration.
func (s *xmlSplitter) bang() error {
	c, err := s.getc()
	if err != nil {
		return s.stop(err)
	}
	switch c {
	case '-':
		if c, err = s.getc(); err != nil {
			return s.stop(err)
		}
		if c == '-' {
			s.kind = mkComment
			return s.until("-->", 0)
		}
	case '[':
		for i := 0; i < len("CDATA["); i++ {
			if c, err = s.getc(); err != nil {
				return s.stop(err)
			}
			if c != "CDATA["[i] {
				if c == '<' {
					s.ungetc()
				}
				return nil // mkBad
			}
		}
		s.kind = mkCDATA
		return s.until("]]>", 0)
	}
	s.kind = mkDecl
	return s.declaration(c)
}

// declaration reads a <!DOCTYPE ...> from the byte after "<!", internal
// subset included.
func (s *xmlSplitter) declaration(c byte) error {
	depth, quote := 0, byte(0)
	for {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case c == '>' && depth == 0:
			return nil
		}
		var err error
		if c, err = s.getc(); err != nil {
			return s.stop(err)
		}
	}
}

// until reads markup up to and including end; prev is the byte read just
// before, if it may begin end.
func (s *xmlSplitter) until(end string, prev byte) error {
	var a, b byte = 0, prev
	n := len(end)
	for {
		c, err := s.getc()
		if err != nil {
			return s.stop(err)
		}
		if c == end[n-1] && (n < 2 || b == end[n-2]) && (n < 3 || a == end[n-3]) {
			return nil
		}
		a, b = b, c
	}
}

// readName reads an element or target name whose first byte, if not zero,
// was read already, and returns the byte that ended it. A '<' ending it is
// put back.
func (s *xmlSplitter) readName(first byte) (byte, error) {
	if first != 0 {
		s.name = append(s.name, first)
	}
	for {
		c, err := s.getc()
		if err != nil {
			return 0, s.stop(err)
		}
		switch c {
		case ' ', '\t', '\r', '\n', '/', '>', '?':
			return c, nil
		case '<':
			s.ungetc()
			return c, nil
		}
		if len(s.name) < maxKeptName {
			s.name = append(s.name, c)
		}
	}
}

// tag reads a start tag (first is its name's first byte) or an end tag
// (first is zero), up to its '>'. A '<' before the '>', even in an
// attribute value, ends the tag there: the tag is broken (encoding/xml will
// say how) and the '<' starts the next markup.
func (s *xmlSplitter) tag(first byte) error {
	term, err := s.readName(first)
	if err != nil || s.eof {
		return err
	}
	prev := term
	switch term {
	case '>':
		return nil
	case '<':
		return nil
	}
	var quote byte
	for {
		c, err := s.getc()
		if err != nil {
			return s.stop(err)
		}
		if quote != 0 {
			if c == quote {
				quote = 0
			} else if c == '<' {
				s.ungetc()
				return nil
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '>':
			s.selfClosing = first != 0 && prev == '/'
			return nil
		case '<':
			s.ungetc()
			return nil
		}
		if !isSpace(c) {
			prev = c
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isNameStart reports whether c may start an element name (any byte of a
// multi-byte UTF-8 character is let through).
func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

// isUser reports whether the markup just read is a user tag: the name is
// exactly "user" (not user_group, user_identifier...).
func (s *xmlSplitter) isUser() bool { return string(s.name) == "user" }

// outside handles markup read outside any user.
func (s *xmlSplitter) outside() error {
	switch s.kind {
	case mkStart:
		s.sawRoot = true
		if s.isUser() {
			return s.begin()
		}
		if s.selfClosing {
			return nil
		}
		if len(s.outer) >= s.lim.MaxDepth {
			return &LimitError{Limit: "MaxDepth", Value: int64(s.lim.MaxDepth),
				What: fmt.Sprintf("the element <%s> at line %d, nested %d deep around the users", s.name, s.markLine, len(s.outer)+1)}
		}
		s.outer = append(s.outer, string(s.name))
	case mkEnd:
		s.closeOuter()
	case mkPI:
		if !s.sawRoot && string(s.name) == "xml" {
			return s.encoding()
		}
	case mkBad, mkCDATA:
		if !s.sawRoot {
			return notXML(s.tok)
		}
	}
	return nil
}

// closeOuter closes the element around the users named by the end tag just
// read, and those it holds; an end tag that closes nothing is ignored.
func (s *xmlSplitter) closeOuter() {
	for i := len(s.outer) - 1; i >= 0; i-- {
		if s.outer[i] == string(s.name) {
			s.outer = s.outer[:i]
			return
		}
	}
}

// inUser handles markup read inside a user element.
func (s *xmlSplitter) inUser() error {
	c, limit := s.cur, s.lim.MaxUserBytes
	switch s.kind {
	case mkStart:
		if s.isUser() {
			if err := s.finish(false, fmt.Sprintf("before the next <user> at line %d", s.markLine)); err != nil {
				return err
			}
			return s.begin()
		}
		c.add(s.tok, s.tokN, limit)
		c.deepest = max(c.deepest, c.depth+1)
		if !s.selfClosing {
			c.depth++
		}
	case mkEnd:
		if s.isUser() {
			c.add(s.tok, s.tokN, limit)
			return s.finish(true, "")
		}
		if c.depth <= 1 && len(s.outer) > 0 && s.outer[len(s.outer)-1] == string(s.name) {
			if err := s.finish(false, fmt.Sprintf("before </%s> at line %d", s.name, s.markLine)); err != nil {
				return err
			}
			s.closeOuter()
			return nil
		}
		c.add(s.tok, s.tokN, limit)
		if c.depth > 1 {
			c.depth--
		}
	default:
		c.add(s.tok, s.tokN, limit)
	}
	return nil
}

// begin starts a user element with the <user> tag just read.
func (s *xmlSplitter) begin() error {
	s.chunk = xmlChunk{line: s.markLine, buf: s.chunk.buf[:0], depth: 1, deepest: 1}
	s.cur = &s.chunk
	s.cur.add(s.tok, s.tokN, s.lim.MaxUserBytes)
	if s.selfClosing {
		return s.finish(true, "")
	}
	return nil
}

// finish decodes the user element read and emits its Record. closed says
// whether its </user> was read; if not, where says where it should have
// been.
func (s *xmlSplitter) finish(closed bool, where string) error {
	c := s.cur
	s.cur = nil
	rec := Record{Ref: fmt.Sprintf("line %d", c.line)}
	switch {
	case c.over:
		more := ""
		if !closed {
			more = " or more"
		}
		rec.Err = &LimitError{Limit: "MaxUserBytes", Value: s.lim.MaxUserBytes,
			What: fmt.Sprintf("the user at line %d (%d bytes%s)", c.line, c.size, more)}
	case c.deepest > s.lim.MaxDepth:
		rec.Err = &LimitError{Limit: "MaxDepth", Value: int64(s.lim.MaxDepth),
			What: fmt.Sprintf("the user at line %d (elements nested %d deep)", c.line, c.deepest)}
	default:
		u, labels, err := s.users.decode(c.buf, c.line)
		switch {
		case !closed && (err == nil || errors.Is(err, errUserCut)):
			err = fmt.Errorf("line %d: <user> is not closed: no </user> %s", c.line, where)
		case errors.Is(err, errUserCut):
			err = fmt.Errorf("line %d: the user element ends early", c.line)
		}
		rec.User, rec.Labels, rec.Err = u, labels, err
		if err != nil {
			rec.User, rec.Labels = nil, nil
		}
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	return s.emit(rec)
}

var encodingDecl = regexp.MustCompile(`\bencoding\s*=\s*["']([^"']*)["']`)

// encoding reads the XML declaration just read and converts the rest of the
// input to UTF-8 if it names another encoding.
func (s *xmlSplitter) encoding() error {
	m := encodingDecl.FindSubmatch(s.tok)
	if m == nil || s.transcoded {
		return nil
	}
	label := strings.TrimSpace(string(m[1]))
	enc, name := charset.Lookup(label)
	switch {
	case enc == nil || name == "replacement":
		return fmt.Errorf("sis: xml: the file's encoding %q is not supported", label)
	case name == "utf-8":
		return nil
	case strings.HasPrefix(name, "utf-16"):
		return fmt.Errorf("sis: xml: the file declares the encoding %q but has no UTF-16 byte order mark", label)
	}
	s.r = bufio.NewReaderSize(enc.NewDecoder().Reader(s.r), xmlBufferSize)
	s.transcoded = true
	return nil
}
