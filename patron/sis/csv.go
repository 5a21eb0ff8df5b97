package sis

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/patronkit/patronkit/patron"
)

// CSV returns the CSV format: one user per row, under a header that names
// every column. csv.md in this folder documents it with an example.
//
// The file is UTF-8, with or without a byte order mark, comma-separated
// and quoted as RFC 4180 says: a cell holding a comma, a quote or a line
// break is written in double quotes, with its quotes doubled. The first
// row is the header. Column names are case-insensitive and blank space
// around them is ignored; primary_id is required, every other column is
// optional and columns may come in any order. A column the format does not
// know refuses the whole file, naming it, so that a misspelt column never
// drops data unnoticed; so does a column named twice.
//
// The user's own columns are named as the user's fields: primary_id,
// first_name, middle_name, last_name, user_title, gender, birth_date,
// user_group, campus_code, job_category, job_description,
// preferred_language, expiry_date, purge_date, status, record_type and
// rs_library. Code columns hold the code only.
//
// Repeatable columns describe the user's segments; N is 1, 2, 3... (no
// leading zero), one group of columns per segment, as many as the file
// needs:
//
//	email_N, email_N_types, email_N_preferred, email_N_description
//	phone_N, phone_N_types, phone_N_preferred, phone_N_preferred_sms
//	address_N_line1 ... address_N_line5, address_N_city,
//	  address_N_state_province, address_N_postal_code, address_N_country,
//	  address_N_types, address_N_preferred, address_N_note,
//	  address_N_start_date, address_N_end_date
//	identifier_N_type, identifier_N_value, identifier_N_note,
//	  identifier_N_status
//	statistic_N_category, statistic_N_type, statistic_N_note
//	note_N_text, note_N_type, note_N_user_viewable, note_N_popup
//	block_N_type, block_N_description, block_N_expiry_date,
//	  block_N_status, block_N_note
//	proxy_for_N (the sponsor's primary_id), proxy_for_N_expiry_date
//
// Types (email_N_types...) are codes separated by "|": home|office.
// Yes/no columns take true, false, yes, no, y, n, 1 or 0 (any case); empty
// is no. Dates are read with Date: 2030-01-16, optionally with Z or an
// offset. status, record_type, identifier_N_status and block_N_status are
// upper-cased. Blank space around a cell is dropped and an empty cell is an
// empty value. A segment is made for each group with a value in it; a
// group whose only values are a type or a "no" makes none (files often
// write email_2_types=work on every row). Segments come in the order of N
// and are all External; notes have the external origin.
//
// Rows are read one at a time: memory does not grow with the number of
// users. A row that cannot be read is emitted with Err naming its line,
// and the next row is read: a row with more or fewer cells than the
// header, a quote inside a cell that is not quoted, a bad date, a bad
// yes/no, a cell that is not UTF-8, a quoted cell that goes on after its
// closing quote on the same line. Empty rows are skipped. Record.Ref is
// "line N", the line the row starts on (the header is line 1). The file as
// a whole is refused when it is empty, its header has an unknown column or
// no primary_id, a quoted cell runs over lines and is not closed where it
// should be (the rows after it cannot be told apart), or one row is longer
// than Limits.MaxUserBytes.
func CSV(l Limits) Format { return csvFormat{lim: l.withDefaults()} }

type csvFormat struct{ lim Limits }

// Name is "csv".
func (csvFormat) Name() string { return "csv" }

// csvGroupColumn is a column of a repeatable group: its kind, N and
// suffix.
var csvGroupColumn = func() *regexp.Regexp {
	var kinds []string
	for _, s := range userSegments {
		kinds = append(kinds, regexp.QuoteMeta(s.names().csv))
	}
	return regexp.MustCompile(`^(` + strings.Join(kinds, "|") + `)_([1-9][0-9]{0,5})(?:_([a-z0-9_]+))?$`)
}()

// csvTypes are the columns of a group that alone make no segment (files
// often write email_2_types=work on every row).
var csvTypes = map[string]bool{"types": true, "type": true}

// csvLayout is what a header says: where each field is.
type csvLayout struct {
	names  []string       // the header, as written
	core   map[string]int // user's column → column index
	groups []*csvGroup    // in the order of userSegments, then N
}

// csvGroup is one group of repeatable columns, email_2_*.
type csvGroup struct {
	seg   almaSegment
	order int // the segment's place in userSegments
	n     int
	cols  map[string]int // column suffix → column
}

func (g *csvGroup) name(sub string) string {
	if sub == "" {
		return fmt.Sprintf("%s_%d", g.seg.names().csv, g.n)
	}
	return fmt.Sprintf("%s_%d_%s", g.seg.names().csv, g.n, sub)
}

// csvHeader reads a header row.
func csvHeader(header []string) (*csvLayout, error) {
	l := &csvLayout{core: map[string]int{}}
	for _, raw := range header {
		l.names = append(l.names, strings.TrimSpace(raw))
	}
	seen := map[string]int{}
	groups := map[[2]string]*csvGroup{}
	for i, raw := range header {
		name := strings.ToLower(strings.TrimSpace(raw))
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF")
		}
		if name == "" {
			return nil, fmt.Errorf("sis: csv: column %d of the header has no name", i+1)
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("sis: csv: the header names the column %s twice (columns %d and %d)", name, j+1, i+1)
		}
		seen[name] = i
		if userFields.byCSV[name] != nil {
			l.core[name] = i
			continue
		}
		m := csvGroupColumn.FindStringSubmatch(name)
		order := -1
		if m != nil {
			order = slices.IndexFunc(userSegments, func(s almaSegment) bool {
				return s.names().csv == m[1] && slices.Contains(s.names().csvColumns, m[3])
			})
		}
		if order < 0 {
			return nil, fmt.Errorf("sis: csv: the header has an unknown column %q (column %d): see the CSV format's documentation for the column names", strings.TrimSpace(raw), i+1)
		}
		key := [2]string{m[1], m[2]}
		g := groups[key]
		if g == nil {
			n, _ := strconv.Atoi(m[2])
			g = &csvGroup{seg: userSegments[order], order: order, n: n, cols: map[string]int{}}
			groups[key] = g
			l.groups = append(l.groups, g)
		}
		g.cols[m[3]] = i
	}
	if _, ok := l.core["primary_id"]; !ok {
		return nil, errors.New("sis: csv: the header has no primary_id column")
	}
	slices.SortFunc(l.groups, func(a, b *csvGroup) int {
		if a.order != b.order {
			return a.order - b.order
		}
		return a.n - b.n
	})
	return l, nil
}

// csvRow reads the cells of one row.
type csvRow struct {
	cells    []string
	problems problems
}

func (r *csvRow) cell(i int) string { return strings.TrimSpace(r.cells[i]) }

// csvColumn names a column for messages: a user's column, or the suffix
// of a group's (its name is made only when a message needs it).
type csvColumn struct {
	g    *csvGroup
	name string
}

func (c csvColumn) String() string {
	if c.g == nil {
		return c.name
	}
	return c.g.name(c.name)
}

func (r *csvRow) date(column csvColumn, s string) string {
	d, err := Date(s)
	if err != nil {
		r.problems.add(column.String(), err.Error())
	}
	return d
}

func (r *csvRow) boolean(column csvColumn, s string) bool {
	v, ok := csvBool(s)
	if !ok {
		r.problems.add(column.String(), fmt.Sprintf("%q is not yes or no (want true, false, yes, no, y, n, 1 or 0)", s))
	}
	return v
}

// csvBool reads a yes/no cell; ok is false when it is neither.
func csvBool(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "no", "n":
		return false, true
	case "yes", "y":
		return true, true
	}
	return parseBool(s)
}

func csvCodes(s string) patron.Codes {
	var out patron.Codes
	for _, c := range strings.Split(s, "|") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// readCSVField reads the cell s of column as the field f of x.
func readCSVField[T any](r *csvRow, f *field[T], column csvColumn, s string, x *T) {
	switch f.kind {
	case kText, kCode, kFirstCode:
		*f.str(x) = s
	case kEnum:
		*f.str(x) = strings.ToUpper(s)
	case kDate:
		*f.str(x) = r.date(column, s)
	case kBool:
		*f.flag(x) = r.boolean(column, s)
	case kCodes:
		*f.codes(x) = csvCodes(s)
	}
}

// user reads the user of a row; nil when every cell is empty.
func (r *csvRow) user(l *csvLayout) *patron.User {
	empty := true
	for _, c := range r.cells {
		if strings.TrimSpace(c) != "" {
			empty = false
			break
		}
	}
	if empty {
		return nil
	}
	for i, c := range r.cells {
		if !utf8.ValidString(c) {
			r.problems.add(l.names[i], "is not UTF-8 text: the file must be written in UTF-8")
		}
	}
	u := &patron.User{}
	for i := range userFields.all {
		f := &userFields.all[i]
		if col, ok := l.core[f.csv]; ok && f.inCSV && f.readable {
			readCSVField(r, f, csvColumn{name: f.csv}, r.cell(col), u)
		}
	}
	for _, g := range l.groups {
		g.seg.readCSV(r, u, g)
	}
	return u
}

// readCSV adds the segment of group g, if the row gives one: a group with
// a value that is not a type or a "no".
func (s *segment[T]) readCSV(r *csvRow, u *patron.User, g *csvGroup) {
	present := false
	for sub, i := range g.cols {
		c := r.cell(i)
		if c == "" || csvTypes[sub] {
			continue
		}
		if v, ok := csvBool(c); s.csvBools[sub] && ok && !v {
			continue
		}
		present = true
	}
	if !present {
		return
	}
	x := s.add(u)
	for i := range s.fields.all {
		f := &s.fields.all[i]
		if col, ok := g.cols[f.csv]; ok && f.inCSV && f.readable {
			readCSVField(r, f, csvColumn{g, f.csv}, r.cell(col), x)
		}
	}
}

// Decode reads the users of a CSV file; see CSV.
func (f csvFormat) Decode(ctx context.Context, r io.Reader, emit func(Record) error) error {
	in := &readBudget{r: stripUTF8BOM(r), max: -1}
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	// The reader buffers 4 KiB ahead of the row it returns.
	const readAhead = 4 << 10
	read := func(what string) ([]string, error) {
		before := cr.InputOffset()
		in.max = before + f.lim.MaxUserBytes + readAhead + budgetSlack
		rec, err := cr.Read()
		if in.hit || cr.InputOffset()-before > f.lim.MaxUserBytes {
			return nil, &LimitError{Limit: "MaxUserBytes", Value: f.lim.MaxUserBytes, What: what}
		}
		return rec, err
	}

	header, err := read("the header")
	var le *LimitError
	switch {
	case err == io.EOF:
		return errors.New("sis: csv: the file is empty: a CSV file starts with its header")
	case errors.As(err, &le):
		return err
	case err != nil && in.bad && !errors.As(err, new(*csv.ParseError)):
		return fmt.Errorf("sis: csv: reading the header: %w", err)
	case err != nil:
		return fmt.Errorf("sis: csv: the header cannot be read: %v", err)
	}
	layout, err := csvHeader(header)
	if err != nil {
		return err
	}
	cr.FieldsPerRecord = len(header)

	row := &csvRow{}
	lastLine := 1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := read(fmt.Sprintf("the row after line %d", lastLine))
		if err == io.EOF {
			return nil
		}
		if errors.As(err, &le) {
			return err
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return fmt.Errorf("sis: csv: reading the row after line %d: %w", lastLine, err)
		}
		if pe != nil {
			lastLine = pe.Line
			var msg string
			switch pe.Err {
			case csv.ErrFieldCount:
				msg = fmt.Sprintf("the row has %d cells where the header has %d columns", len(rec), len(header))
			case csv.ErrBareQuote:
				msg = fmt.Sprintf("a quote in a cell that is not quoted (line %d, column %d): quote the whole cell and double the quotes in it", pe.Line, pe.Column)
			case csv.ErrQuote:
				if pe.Line != pe.StartLine {
					return fmt.Errorf("sis: csv: line %d: a quoted cell is not closed where it should be (line %d, column %d); the rows after it cannot be told apart", pe.StartLine, pe.Line, pe.Column)
				}
				msg = fmt.Sprintf("a quoted cell goes on after its closing quote (column %d): double the quotes inside a quoted cell", pe.Column)
			default:
				return fmt.Errorf("sis: csv: line %d: a quoted cell is broken (line %d, column %d: %v); nothing after it can be read", pe.StartLine, pe.Line, pe.Column, pe.Err)
			}
			ref := fmt.Sprintf("line %d", pe.StartLine)
			if err := emit(Record{Ref: ref, Err: fmt.Errorf("%s: %s", ref, msg)}); err != nil {
				return err
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		lastLine, _ = cr.FieldPos(len(rec) - 1)
		row.cells = rec
		row.problems.reset()
		u := row.user(layout)
		if u == nil {
			continue
		}
		if err := emit(row.problems.record(fmt.Sprintf("line %d", line), u, nil)); err != nil {
			return err
		}
	}
}
