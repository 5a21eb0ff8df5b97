package patron

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
)

// BatchSegments are the segments a change of many users adds to or
// removes from each of them (Alma's "Update User Information": add or
// remove a block, a note, a statistic). What is added is Internal (the
// library's): a block ACTIVE, a note of origin library, each stamped with
// the actor and the time. What is removed is the user's Internal entries
// that match; the External ones of an external user belong to the SIS
// and stay (the user's outcome names them).
type BatchSegments struct {
	// AddBlocks are blocks to add; a user with an active block of the
	// same type and description already is left as they are.
	AddBlocks []BatchBlock `json:"add_blocks,omitempty"`
	// RemoveBlocks are block types: every block of one of these types
	// is removed.
	RemoveBlocks []string `json:"remove_blocks,omitempty"`
	// AddNotes are notes to add; a user with a note of the same type and
	// text already is left as they are.
	AddNotes []BatchNote `json:"add_notes,omitempty"`
	// RemoveNotes remove every note of the same text (and of the same
	// type, when one is given).
	RemoveNotes []BatchNote `json:"remove_notes,omitempty"`
	// AddStatistics are statistics to add; a user with a statistic of
	// the category already is left as they are.
	AddStatistics []BatchStatistic `json:"add_statistics,omitempty"`
	// RemoveStatistics are statistical categories: every statistic of
	// one of them is removed.
	RemoveStatistics []string `json:"remove_statistics,omitempty"`
}

// BatchBlock is a block a change of many users adds.
type BatchBlock struct {
	BlockType        string `json:"block_type"`
	BlockDescription string `json:"block_description"`
	BlockNote        string `json:"block_note,omitempty"`
	ExpiryDate       string `json:"expiry_date,omitempty"`
}

// BatchNote is a note a change of many users adds or removes.
type BatchNote struct {
	NoteType     string `json:"note_type,omitempty"`
	NoteText     string `json:"note_text"`
	UserViewable bool   `json:"user_viewable,omitempty"`
	PopupNote    bool   `json:"popup_note,omitempty"`
}

// BatchStatistic is a statistic a change of many users adds.
type BatchStatistic struct {
	StatisticCategory string `json:"statistic_category"`
	CategoryType      string `json:"category_type,omitempty"`
}

// BatchChange is what a change of many users does to each: core fields
// set or cleared (see BatchFields), segments added or removed.
type BatchChange struct {
	// Fields are the core fields to set, by JSON name ("" clears).
	Fields map[string]string `json:"fields"`
	BatchSegments
}

// empty tells whether b adds and removes nothing.
func (b *BatchSegments) empty() bool {
	return len(b.AddBlocks)+len(b.RemoveBlocks)+len(b.AddNotes)+len(b.RemoveNotes)+len(b.AddStatistics)+len(b.RemoveStatistics) == 0
}

// Segment changes' operations (SegmentChange.Op).
const (
	SegmentAdded   = "added"
	SegmentRemoved = "removed"
)

// SegmentChange is a segment a change of many users added to a user or
// removed from them, whole, so that an undo can take it away or put it
// back.
type SegmentChange struct {
	// Kind is KindBlocks, KindNotes or KindStatistics.
	Kind string `json:"kind"`
	// Op is SegmentAdded or SegmentRemoved.
	Op string `json:"op"`
	// Value says what it is in a few words: a block's type and
	// description, a note's text, a statistic's category.
	Value     string     `json:"value"`
	Block     *Block     `json:"block,omitempty"`
	Note      *Note      `json:"note,omitempty"`
	Statistic *Statistic `json:"statistic,omitempty"`
}

// id is the segment's id.
func (c SegmentChange) id() string {
	switch {
	case c.Block != nil:
		return c.Block.ID
	case c.Note != nil:
		return c.Note.ID
	case c.Statistic != nil:
		return c.Statistic.ID
	}
	return ""
}

// CheckBatch is CheckBatchFields for a whole change: the fields, and the
// segments to add or remove (each required text given, not too long, with
// no control characters; dates YYYY-MM-DD), each named as its list and
// place (add_blocks[0].block_type). A change of nothing is Invalid
// (fields).
func CheckBatch(c *BatchChange) error {
	bad := checkFields(c.Fields)
	text := func(field string, v *string, required bool, max int, multi bool) {
		*v = strings.TrimSpace(*v)
		switch e := TextError(field, *v, multi); {
		case e != nil:
			bad = append(bad, *e)
		case required && *v == "":
			bad = append(bad, fault.FieldError{Field: field, Code: "required", Message: "is required"})
		case utf8.RuneCountInString(*v) > max:
			bad = append(bad, fault.FieldError{Field: field, Code: "too_long", Message: fmt.Sprintf("must be at most %d characters", max)})
		}
	}
	for i := range c.AddBlocks {
		b := &c.AddBlocks[i]
		p := fmt.Sprintf("add_blocks[%d].", i)
		text(p+"block_type", &b.BlockType, true, 64, false)
		text(p+"block_description", &b.BlockDescription, true, 255, false)
		text(p+"block_note", &b.BlockNote, false, 2000, true)
		if _, err := time.Parse(time.DateOnly, b.ExpiryDate); b.ExpiryDate != "" && err != nil {
			bad = append(bad, fault.FieldError{Field: p + "expiry_date", Code: "invalid_date", Message: "must be a date written YYYY-MM-DD"})
		}
	}
	for i := range c.RemoveBlocks {
		text(fmt.Sprintf("remove_blocks[%d]", i), &c.RemoveBlocks[i], true, 64, false)
	}
	for _, l := range []struct {
		name  string
		notes []BatchNote
	}{{"add_notes", c.AddNotes}, {"remove_notes", c.RemoveNotes}} {
		for i := range l.notes {
			n := &l.notes[i]
			p := fmt.Sprintf("%s[%d].", l.name, i)
			text(p+"note_type", &n.NoteType, false, 64, false)
			text(p+"note_text", &n.NoteText, true, 2000, true)
		}
	}
	for i := range c.AddStatistics {
		st := &c.AddStatistics[i]
		p := fmt.Sprintf("add_statistics[%d].", i)
		text(p+"statistic_category", &st.StatisticCategory, true, 64, false)
		text(p+"category_type", &st.CategoryType, false, 64, false)
	}
	for i := range c.RemoveStatistics {
		text(fmt.Sprintf("remove_statistics[%d]", i), &c.RemoveStatistics[i], true, 64, false)
	}
	if len(c.Fields) == 0 && c.empty() {
		bad = append(bad, fault.FieldError{Field: "fields", Code: "required", Message: "name at least one field to set or clear, or a segment to add or remove"})
	}
	if len(bad) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the change is not valid", Fields: bad}
	}
	return nil
}

// heldSegments are the blocks, notes and statistics of the users of a
// batch, by user id.
type heldSegments struct {
	blocks     map[string][]Block
	notes      map[string][]Note
	statistics map[string][]Statistic
}

// loadSegments reads the blocks, notes and statistics of the users ids.
func loadSegments(tx *gorm.DB, ids []string) (heldSegments, error) {
	h := heldSegments{blocks: map[string][]Block{}, notes: map[string][]Note{}, statistics: map[string][]Statistic{}}
	var bs []Block
	var ns []Note
	var ss []Statistic
	for _, q := range []any{&bs, &ns, &ss} {
		if err := tx.Where("user_id IN ?", ids).Order("id").Find(q).Error; err != nil {
			return h, err
		}
	}
	for _, b := range bs {
		h.blocks[b.UserID] = append(h.blocks[b.UserID], b)
	}
	for _, n := range ns {
		h.notes[n.UserID] = append(h.notes[n.UserID], n)
	}
	for _, st := range ss {
		h.statistics[st.UserID] = append(h.statistics[st.UserID], st)
	}
	return h, nil
}

// segmentEdits works out what segs (or, for an undo, undo) does to the
// user u (whose held segments are in u.Blocks, u.Notes, u.Statistics,
// changed here to what they become): the segments added and removed, and
// the reasons of what the user's rules refuse.
func segmentEdits(u *User, external bool, segs *BatchSegments, undo []SegmentChange, by string, now time.Time) ([]SegmentChange, []fault.FieldError) {
	var out []SegmentChange
	var reasons []fault.FieldError
	owned := func(seg Segment) bool { return external && seg.IsExternal() }
	newSeg := func() Segment { return Segment{ID: keys.NewID(), UserID: u.ID, SegmentType: SegmentInternal} }
	if segs != nil {
		for _, typ := range segs.RemoveBlocks {
			u.Blocks = slices.DeleteFunc(u.Blocks, func(b Block) bool {
				if b.BlockType != typ {
					return false
				}
				if owned(b.Segment) {
					reasons = append(reasons, fault.FieldError{Field: "remove_blocks", Code: "managed_by_sis", Message: "the block " + b.BlockType + " came from the SIS and stays"})
					return false
				}
				out = append(out, SegmentChange{Kind: KindBlocks, Op: SegmentRemoved, Value: b.BlockType + ": " + b.BlockDescription, Block: &b})
				return true
			})
		}
		for _, nb := range segs.AddBlocks {
			if slices.ContainsFunc(u.Blocks, func(b Block) bool {
				return b.BlockType == nb.BlockType && b.BlockDescription == nb.BlockDescription && b.BlockStatus == StatusActive
			}) {
				continue
			}
			b := Block{Segment: newSeg(), BlockType: nb.BlockType, BlockDescription: nb.BlockDescription, BlockStatus: StatusActive,
				BlockNote: nb.BlockNote, ExpiryDate: nb.ExpiryDate, CreatedBy: by, CreatedDate: now}
			u.Blocks = append(u.Blocks, b)
			out = append(out, SegmentChange{Kind: KindBlocks, Op: SegmentAdded, Value: b.BlockType + ": " + b.BlockDescription, Block: &b})
		}
		for _, rn := range segs.RemoveNotes {
			u.Notes = slices.DeleteFunc(u.Notes, func(n Note) bool {
				if n.NoteText != rn.NoteText || (rn.NoteType != "" && n.NoteType != rn.NoteType) {
					return false
				}
				if owned(n.Segment) {
					reasons = append(reasons, fault.FieldError{Field: "remove_notes", Code: "managed_by_sis", Message: "a note came from the SIS and stays"})
					return false
				}
				out = append(out, SegmentChange{Kind: KindNotes, Op: SegmentRemoved, Value: n.NoteText, Note: &n})
				return true
			})
		}
		for _, nn := range segs.AddNotes {
			if slices.ContainsFunc(u.Notes, func(n Note) bool { return n.NoteType == nn.NoteType && n.NoteText == nn.NoteText }) {
				continue
			}
			n := Note{Segment: newSeg(), NoteType: nn.NoteType, NoteText: nn.NoteText, UserViewable: nn.UserViewable, PopupNote: nn.PopupNote,
				Origin: OriginLibrary, CreatedBy: by, CreatedDate: now}
			u.Notes = append(u.Notes, n)
			out = append(out, SegmentChange{Kind: KindNotes, Op: SegmentAdded, Value: n.NoteText, Note: &n})
		}
		for _, cat := range segs.RemoveStatistics {
			u.Statistics = slices.DeleteFunc(u.Statistics, func(st Statistic) bool {
				if st.StatisticCategory != cat {
					return false
				}
				if owned(st.Segment) {
					reasons = append(reasons, fault.FieldError{Field: "remove_statistics", Code: "managed_by_sis", Message: "the statistic " + cat + " came from the SIS and stays"})
					return false
				}
				out = append(out, SegmentChange{Kind: KindStatistics, Op: SegmentRemoved, Value: st.StatisticCategory, Statistic: &st})
				return true
			})
		}
		for _, ns := range segs.AddStatistics {
			if slices.ContainsFunc(u.Statistics, func(st Statistic) bool { return st.StatisticCategory == ns.StatisticCategory }) {
				continue
			}
			st := Statistic{Segment: newSeg(), StatisticCategory: ns.StatisticCategory, CategoryType: ns.CategoryType}
			u.Statistics = append(u.Statistics, st)
			out = append(out, SegmentChange{Kind: KindStatistics, Op: SegmentAdded, Value: st.StatisticCategory, Statistic: &st})
		}
	}
	// An undo takes away what was added (if it is still there) and puts
	// back what was removed (if it is not there again).
	for _, c := range undo {
		id := c.id()
		switch c.Op {
		case SegmentAdded:
			gone := false
			switch c.Kind {
			case KindBlocks:
				u.Blocks = slices.DeleteFunc(u.Blocks, func(b Block) bool { gone = gone || b.ID == id; return b.ID == id })
			case KindNotes:
				u.Notes = slices.DeleteFunc(u.Notes, func(n Note) bool { gone = gone || n.ID == id; return n.ID == id })
			case KindStatistics:
				u.Statistics = slices.DeleteFunc(u.Statistics, func(st Statistic) bool { gone = gone || st.ID == id; return st.ID == id })
			}
			if gone {
				c.Op = SegmentRemoved
				out = append(out, c)
			}
		case SegmentRemoved:
			switch {
			case c.Block != nil && !slices.ContainsFunc(u.Blocks, func(b Block) bool { return b.ID == id }):
				b := *c.Block
				b.UserID = u.ID
				u.Blocks = append(u.Blocks, b)
				c.Block = &b
			case c.Note != nil && !slices.ContainsFunc(u.Notes, func(n Note) bool { return n.ID == id }):
				n := *c.Note
				n.UserID = u.ID
				u.Notes = append(u.Notes, n)
				c.Note = &n
			case c.Statistic != nil && !slices.ContainsFunc(u.Statistics, func(st Statistic) bool { return st.ID == id }):
				st := *c.Statistic
				st.UserID = u.ID
				u.Statistics = append(u.Statistics, st)
				c.Statistic = &st
			default:
				continue
			}
			c.Op = SegmentAdded
			out = append(out, c)
		}
	}
	return out, reasons
}

// writeSegments adds and removes, in tx, the segments of changes.
func writeSegments(tx *gorm.DB, changes []SegmentChange) error {
	var addB []Block
	var addN []Note
	var addS []Statistic
	del := map[string][]string{}
	for _, c := range changes {
		if c.Op == SegmentRemoved {
			del[c.Kind] = append(del[c.Kind], c.id())
			continue
		}
		switch {
		case c.Block != nil:
			addB = append(addB, *c.Block)
		case c.Note != nil:
			addN = append(addN, *c.Note)
		case c.Statistic != nil:
			addS = append(addS, *c.Statistic)
		}
	}
	for kind, model := range map[string]any{KindBlocks: &Block{}, KindNotes: &Note{}, KindStatistics: &Statistic{}} {
		for chunk := range slices.Chunk(del[kind], 500) {
			if err := tx.Where("id IN ?", chunk).Delete(model).Error; err != nil {
				return err
			}
		}
	}
	if len(addB) > 0 {
		if err := tx.CreateInBatches(addB, 200).Error; err != nil {
			return err
		}
	}
	if len(addN) > 0 {
		if err := tx.CreateInBatches(addN, 200).Error; err != nil {
			return err
		}
	}
	if len(addS) > 0 {
		if err := tx.CreateInBatches(addS, 200).Error; err != nil {
			return err
		}
	}
	return nil
}
