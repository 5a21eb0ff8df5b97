package sis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/patronkit/patronkit/patron"
)

// What the readers share: the labels and the problems of the record being
// read, a cap on how far the JSON and CSV decoders may read ahead, and the
// byte order mark they skip.

// readBudget passes reads through while fewer than max bytes have been
// read (max < 0: no cap), so that a decoder cannot buffer an unbounded
// value; beyond it, reads fail and hit is set.
type readBudget struct {
	r   io.Reader
	n   int64 // bytes read so far
	max int64
	hit bool
	bad bool // the reader failed (not io.EOF)
}

var errBudget = errors.New("sis: read budget spent")

func (b *readBudget) Read(p []byte) (int, error) {
	if b.max >= 0 {
		if b.n >= b.max {
			b.hit = true
			return 0, errBudget
		}
		if rest := b.max - b.n; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.bad = true
	}
	return n, err
}

// stripUTF8BOM drops a UTF-8 byte order mark at the start of r.
func stripUTF8BOM(r io.Reader) io.Reader {
	var head [3]byte
	n, err := io.ReadFull(r, head[:])
	if n == 3 && bytes.Equal(head[:], []byte("\xEF\xBB\xBF")) {
		return r
	}
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return io.MultiReader(bytes.NewReader(head[:n]), bomReadError{err})
	}
	return io.MultiReader(bytes.NewReader(head[:n]), r)
}

type bomReadError struct{ err error }

func (e bomReadError) Read([]byte) (int, error) { return 0, e.err }

// budgetSlack is how far past a user's limit the reader may read ahead,
// so that the exact check (on the decoder's offsets) is the one that
// usually refuses.
const budgetSlack = 64 << 10

// labelSet collects the labels a record gives its codes: one a table and
// code, the last description winning.
type labelSet []Label

func (ls *labelSet) add(table, code, desc string) {
	if table == "" || code == "" || desc == "" {
		return
	}
	for i := range *ls {
		if l := &(*ls)[i]; l.Table == table && l.Code == code {
			l.Desc = desc
			return
		}
	}
	*ls = append(*ls, Label{Table: table, Code: code, Desc: desc})
}

// problems collects what is wrong with one record, for its Err: the first
// few in full, then how many more.
type problems struct {
	list []string
	more int
}

const maxProblems = 8

func (p *problems) add(where, msg string) {
	if len(p.list) < maxProblems {
		p.list = append(p.list, where+": "+msg)
	} else {
		p.more++
	}
}

func (p *problems) reset() { p.list, p.more = p.list[:0], 0 }

// record is the Record of a user read at ref: the user and its labels, or
// an error naming ref, the user's primary_id and the problems.
func (p *problems) record(ref string, u *patron.User, labels []Label) Record {
	if len(p.list) == 0 {
		return Record{User: u, Labels: labels, Ref: ref}
	}
	who := ref
	if u.PrimaryID != "" {
		who += fmt.Sprintf(" (primary_id %q)", u.PrimaryID)
	}
	msg := strings.Join(p.list, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf("; and %d more", p.more)
	}
	return Record{Ref: ref, Err: fmt.Errorf("%s: %s", who, msg)}
}
