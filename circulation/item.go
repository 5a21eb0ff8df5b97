package circulation

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Item statuses.
const (
	// StatusAvailable: on the shelf, free to lend.
	StatusAvailable = "available"
	// StatusOnLoan: lent to a patron.
	StatusOnLoan = "on_loan"
	// StatusOnHoldShelf: waiting on the hold shelf for the patron who
	// asked for it.
	StatusOnHoldShelf = "on_hold_shelf"
	// StatusLost: declared lost.
	StatusLost = "lost"
	// StatusMissing: not where it should be.
	StatusMissing = "missing"
	// StatusInTransit: on its way between libraries.
	StatusInTransit = "in_transit"
)

var itemStatuses = []string{StatusAvailable, StatusOnLoan, StatusOnHoldShelf, StatusLost, StatusMissing, StatusInTransit}

// Item is a copy a library lends, known by its barcode.
type Item struct {
	// ID (a UUIDv7) and Institution are set by the service.
	ID          string `json:"-" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// Barcode identifies the item in its institution, whatever its case.
	Barcode string `json:"barcode" gorm:"size:255;not null"`
	// BarcodeKey is the barcode folded to lower case, the key it is unique
	// on.
	BarcodeKey string `json:"-" gorm:"size:255;not null"`
	// Title and Author describe the work, as the catalog gives them.
	Title  string `json:"title" gorm:"size:1000;not null"`
	Author string `json:"author,omitempty" gorm:"size:255"`
	// Library is the code of the library that owns the item; it must exist.
	Library string `json:"library" gorm:"size:64;not null"`
	// Location is the shelving location within the library (STACKS, REF).
	Location string `json:"location,omitempty" gorm:"size:64"`
	// ItemPolicy and MaterialType are codes the terms of use match on
	// (e.g. item policy SHORT_LOAN, material type BOOK or DVD).
	ItemPolicy   string `json:"item_policy,omitempty" gorm:"size:64"`
	MaterialType string `json:"material_type,omitempty" gorm:"size:64"`
	// TitleID names the title (the bibliographic record, Alma's MMS ID)
	// the item is a copy of: items with one TitleID are copies of one
	// title, and a request on the title takes whichever comes first.
	TitleID string `json:"title_id,omitempty" gorm:"size:64"`
	// Status is one of the Status constants. Default: available.
	Status string `json:"status" gorm:"size:16;not null"`

	// Version counts the changes of the item; a replace must name the
	// version it was based on.
	Version   int       `json:"version" gorm:"not null"`
	CreatedAt time.Time `json:"created_date"`
	UpdatedAt time.Time `json:"updated_date"`
}

// TableName places items in the pk_ namespace of the host's database.
func (Item) TableName() string { return "pk_circ_items" }

// ItemLookup finds an item by barcode. The Service implements it over its
// own item table; a host whose catalog lives elsewhere implements it over
// that catalog (ItemLookupFunc adapts a function) and gives it as
// Options.Items, where the Service looks up the items it does not hold
// yet. An item that does not exist must be reported as a *fault.Error of
// kind NotFound. Items it returns name one of the institution's libraries
// by code, whose time zone and calendar their due dates follow.
type ItemLookup interface {
	Item(ctx context.Context, inst, barcode string) (*Item, error)
}

// ItemLookupFunc makes a function an ItemLookup.
type ItemLookupFunc func(ctx context.Context, inst, barcode string) (*Item, error)

// Item calls f.
func (f ItemLookupFunc) Item(ctx context.Context, inst, barcode string) (*Item, error) {
	return f(ctx, inst, barcode)
}

var _ ItemLookup = (*Service)(nil)

func normalizeItem(it *Item) {
	trim(&it.Barcode, &it.Title, &it.Author, &it.Library, &it.Location, &it.ItemPolicy, &it.MaterialType, &it.TitleID)
	it.Status = strings.ToLower(strings.TrimSpace(it.Status))
	it.BarcodeKey = keys.Fold(it.Barcode)
}

// checkItem validates an item and sets its library code as the library
// spells it. The field errors are returned, not wrapped.
func checkItem(tx *gorm.DB, inst string, it *Item) (*checker, error) {
	var c checker
	c.record(it)
	c.text("barcode", it.Barcode, true, 255)
	if strings.ContainsFunc(it.Barcode, func(r rune) bool { return r < ' ' || r == 0x7f || r == '/' }) {
		c.add("barcode", "bad_format", "may not hold a slash or control characters")
	} else if it.Barcode == "." || it.Barcode == ".." {
		c.add("barcode", "bad_format", `must not be "." or "..": a URL cannot name it`)
	}
	c.text("title", it.Title, true, 1000)
	c.text("author", it.Author, false, 255)
	c.text("library", it.Library, true, 64)
	c.text("location", it.Location, false, 64)
	c.text("item_policy", it.ItemPolicy, false, 64)
	c.text("material_type", it.MaterialType, false, 64)
	c.text("title_id", it.TitleID, false, 64)
	c.oneOf("status", it.Status, itemStatuses...)
	if it.Library != "" && len(it.Library) <= 64 {
		var lib Library
		err := tx.Select("code").Where("institution = ? AND code_key = ?", inst, keys.Fold(it.Library)).Take(&lib).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			c.add("library", "unknown_value", "no library %q", it.Library)
		case err != nil:
			return nil, err
		default:
			it.Library = lib.Code
		}
	}
	return &c, nil
}

// CreateItem adds an item. A barcode already taken in the institution (in
// any case) is a Conflict; its library must exist.
func (s *Service) CreateItem(ctx context.Context, inst string, in *Item) (*Item, error) {
	it := *in
	it.Institution = inst
	normalizeItem(&it)
	if it.Status == "" {
		it.Status = StatusAvailable
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		c, err := checkItem(tx, inst, &it)
		if err != nil {
			return err
		}
		if it.Status == StatusOnLoan {
			c.add("status", "read_only", "on_loan is set by check-out, not by hand")
		}
		if err := c.err("item"); err != nil {
			return err
		}
		if cur, err := loadItem(tx, inst, it.Barcode); err == nil {
			return conflict("barcode %q is already taken by item %q", it.Barcode, cur.Title)
		} else if !errors.Is(err, fault.ErrNotFound) {
			return err
		}
		now := s.clock()
		it.ID, it.Version, it.CreatedAt, it.UpdatedAt = keys.NewID(), 1, now, now
		return tx.Create(&it).Error
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return &it, nil
}

// Item returns an item by barcode (any case). With a host's catalog
// (Options.Items), an item not in the table yet is asked of the catalog
// and added (see fromCatalog). It makes the Service an ItemLookup.
func (s *Service) Item(ctx context.Context, inst, barcode string) (*Item, error) {
	it, err := loadItem(s.conn(ctx), inst, barcode)
	if s.items != nil && errors.Is(err, fault.ErrNotFound) && patron.Findable(barcode) {
		return s.fromCatalog(ctx, inst, barcode)
	}
	if err != nil {
		return nil, s.translate(err)
	}
	return it, nil
}

// ItemTitles answers the titles of the items of inst named by their ids
// (Loan.ItemID), by id, in one read: for a list of loans that shows what
// each is of. An id no item of inst holds is left out.
func (s *Service) ItemTitles(ctx context.Context, inst string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows := make([]struct{ ID, Title string }, 0, len(ids))
	if err := s.conn(ctx).Model(&Item{}).Select("id", "title").Where("institution = ? AND id IN ?", inst, ids).Find(&rows).Error; err != nil {
		return nil, s.translate(err)
	}
	for _, r := range rows {
		out[r.ID] = r.Title
	}
	return out, nil
}

// ReplaceItem replaces an item with in, whole. version is the version the
// caller read; an item changed since is Stale. The barcode may change (to
// one not taken); an empty status keeps the current one.
func (s *Service) ReplaceItem(ctx context.Context, inst, barcode string, version int, in *Item) (*Item, error) {
	var out *Item
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadItem(tx, inst, barcode)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale("the item is at version %d, not %d: read it again", cur.Version, version)
		}
		it := *in
		it.Institution = inst
		normalizeItem(&it)
		if it.Barcode == "" {
			it.Barcode, it.BarcodeKey = cur.Barcode, cur.BarcodeKey
		}
		if it.Status == "" {
			it.Status = cur.Status
		}
		c, err := checkItem(tx, inst, &it)
		if err != nil {
			return err
		}
		if err := c.err("item"); err != nil {
			return err
		}
		if it.BarcodeKey != cur.BarcodeKey {
			if other, err := loadItem(tx, inst, it.Barcode); err == nil {
				return conflict("barcode %q is already taken by item %q", it.Barcode, other.Title)
			} else if !errors.Is(err, fault.ErrNotFound) {
				return err
			}
		}
		if err := s.saveItem(tx, cur, &it); err != nil {
			return err
		}
		out = &it
		return nil
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return out, nil
}

// saveItem writes it over cur, if cur is still at the version read. The
// status on_loan belongs to the loans: only check-out sets it and only
// check-in clears it.
func (s *Service) saveItem(tx *gorm.DB, cur, it *Item) error {
	if it.Status != cur.Status && (it.Status == StatusOnLoan || cur.Status == StatusOnLoan) {
		return &fault.Error{Kind: fault.Invalid, Detail: "the item is not valid", Fields: []fault.FieldError{{
			Field: "status", Code: "read_only", Message: "on_loan is set by check-out and cleared by check-in, not by hand"}}}
	}
	it.ID, it.Version, it.CreatedAt, it.UpdatedAt = cur.ID, cur.Version+1, cur.CreatedAt, s.clock()
	res := tx.Model(&Item{}).Where("id = ? AND version = ?", cur.ID, cur.Version).
		Select("*").Omit("id", "institution", "created_at").Updates(it)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return stale("the item changed while it was being saved: read it again")
	}
	return nil
}

// DeleteItem removes an item. An item on loan, on the hold shelf or in
// transit is Refused.
func (s *Service) DeleteItem(ctx context.Context, inst, barcode string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadItem(tx, inst, barcode)
		if err != nil {
			return err
		}
		switch cur.Status {
		case StatusOnLoan, StatusOnHoldShelf, StatusInTransit:
			return refused(fmt.Sprintf("item %q cannot be deleted", cur.Barcode), cause(ReasonItemInUse, "status", cur.Status))
		}
		res := tx.Where("id = ? AND version = ?", cur.ID, cur.Version).Delete(&Item{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("the item changed while it was being deleted; try again")
		}
		return nil
	})
	return s.translate(err)
}

// ItemQuery selects items for a list. Empty fields do not filter.
type ItemQuery struct {
	// Q matches words against title, author and barcode; every word must
	// match somewhere (case-insensitive).
	Q string
	// Library and Status select items of one library (its code) or status.
	Library string
	Status  string
	// Limit is the page size: default 10, at most 100.
	Limit int
	// Offset is how many matching items to pass over.
	Offset int
}

// ItemPage is one page of a list of items, with the count of all matches.
type ItemPage struct {
	Items            []Item `json:"item"`
	TotalRecordCount int64  `json:"total_record_count"`
}

// Items returns a page of an institution's items, ordered by title and
// barcode.
func (s *Service) Items(ctx context.Context, inst string, q ItemQuery) (ItemPage, error) {
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if q.Limit > 100 || q.Offset < 0 {
		return ItemPage{}, &fault.Error{Kind: fault.Invalid, Detail: "the query is not valid",
			Fields: []fault.FieldError{{Field: "limit", Code: "out_of_range", Message: "limit must be 1..100 and offset at least 0"}}}
	}
	c := &checker{}
	c.record(struct {
		Q       string `json:"q"`
		Library string `json:"library"`
		Status  string `json:"status"`
	}{q.Q, q.Library, q.Status})
	if err := c.err("query"); err != nil {
		return ItemPage{}, err
	}
	db := s.conn(ctx).Model(&Item{}).Where("institution = ?", inst)
	if l := strings.TrimSpace(q.Library); l != "" {
		db = db.Where("library IN (?)", s.db.Model(&Library{}).Select("code").Where("institution = ? AND code_key = ?", inst, keys.Fold(l)))
	}
	if st := strings.ToLower(strings.TrimSpace(q.Status)); st != "" {
		db = db.Where("status = ?", st)
	}
	for _, word := range strings.Fields(strings.ToLower(q.Q)) {
		like := "%" + escapeLike(word) + "%"
		db = db.Where(`LOWER(title) LIKE ? ESCAPE '!' OR LOWER(author) LIKE ? ESCAPE '!' OR barcode_key LIKE ? ESCAPE '!'`, like, like, like)
	}
	var page ItemPage
	if err := db.Count(&page.TotalRecordCount).Error; err != nil {
		return ItemPage{}, err
	}
	if err := db.Order("title, barcode_key").Limit(q.Limit).Offset(q.Offset).Find(&page.Items).Error; err != nil {
		return ItemPage{}, err
	}
	if page.Items == nil {
		page.Items = []Item{}
	}
	return page, nil
}

// escapeLike makes a user's words literal inside LIKE, with '!' as escape.
func escapeLike(v string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(v)
}

func loadItem(db *gorm.DB, inst, barcode string) (*Item, error) {
	var it Item
	if !patron.Findable(barcode) {
		return nil, notFound("no item with barcode %q", strings.TrimSpace(barcode))
	}
	err := db.Where("institution = ? AND barcode_key = ?", inst, keys.Fold(barcode)).Take(&it).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no item with barcode %q", strings.TrimSpace(barcode))
	}
	if err != nil {
		return nil, err
	}
	return &it, nil
}

// LoadReport tells what a bulk load did with each row.
type LoadReport struct {
	// Created and Updated count the items written.
	Created int `json:"created"`
	Updated int `json:"updated"`
	// Rejected lists the rows that were not written, in order.
	Rejected []Rejection `json:"rejected"`
}

// Rejection is a row of a bulk load that was not written, and why.
type Rejection struct {
	// Line is the row's line in a CSV file (the header is line 1), or its
	// position (from 1) in a list given to LoadItems.
	Line    int    `json:"line"`
	Barcode string `json:"barcode,omitempty"`
	// Reason says why in words; Fields, when the row was invalid, name the
	// fields with the usual stable codes.
	Reason string             `json:"reason"`
	Fields []fault.FieldError `json:"fields,omitempty"`
}

// LoadItems creates or updates items in bulk, matched by barcode (any
// case). Each item is written whole, in a transaction of its own, or
// rejected with its position and reason while the others go on. An item
// with no status keeps its current one, or is available when new. The
// error is for failures of the database only; the report lists rejected
// rows.
func (s *Service) LoadItems(ctx context.Context, inst string, items []Item) (LoadReport, error) {
	rep := LoadReport{Rejected: []Rejection{}}
	for i := range items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.loadOne(ctx, inst, i+1, items[i], &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// The columns of a CSV file of items, in the order of the documented
// header.
var csvColumns = []string{"barcode", "title", "author", "library", "location", "item_policy", "material_type", "title_id"}

// LoadItemsCSV creates or updates items from a CSV file (UTF-8, comma
// separated, RFC 4180 quoting) as LoadItems does. Its first line is the
// header
//
//	barcode,title,author,library,location,item_policy,material_type,title_id
//
// Columns may come in any order and author, location, item_policy,
// material_type and title_id may be left out; barcode, title and library are required
// and unknown columns are refused (the whole file is Invalid and nothing is
// written). Every later line is one item; a line that cannot be read (a
// wrong number of fields, a bad quote) is rejected with its line number
// like an invalid item, and the rest goes on. Items loaded from CSV keep
// their status, or are available when new.
func (s *Service) LoadItemsCSV(ctx context.Context, inst string, r io.Reader) (LoadReport, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return LoadReport{}, csvInvalid("the file is empty: it must start with the header " + strings.Join(csvColumns, ","))
	}
	if err != nil {
		return LoadReport{}, csvInvalid(err.Error())
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return LoadReport{}, csvInvalid(fmt.Sprintf("unknown column %q: the columns are %s", h, strings.Join(csvColumns, ",")))
		}
		if _, dup := col[h]; dup {
			return LoadReport{}, csvInvalid(fmt.Sprintf("column %q appears twice", h))
		}
		col[h] = i
	}
	for _, req := range []string{"barcode", "title", "library"} {
		if _, ok := col[req]; !ok {
			return LoadReport{}, csvInvalid(fmt.Sprintf("the header has no %s column", req))
		}
	}
	rep := LoadReport{Rejected: []Rejection{}}
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return rep, nil
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			rep.Rejected = append(rep.Rejected, Rejection{Line: perr.StartLine, Reason: "the line cannot be read: " + perr.Err.Error()})
			continue
		}
		if err != nil {
			return rep, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			rep.Rejected = append(rep.Rejected, Rejection{Line: line, Reason: fmt.Sprintf("the line has %d fields, the header %d", len(rec), len(header))})
			continue
		}
		v := func(name string) string {
			if i, ok := col[name]; ok {
				return rec[i]
			}
			return ""
		}
		it := Item{Barcode: v("barcode"), Title: v("title"), Author: v("author"), Library: v("library"),
			Location: v("location"), ItemPolicy: v("item_policy"), MaterialType: v("material_type"), TitleID: v("title_id")}
		if err := s.loadOne(ctx, inst, line, it, &rep); err != nil {
			return rep, err
		}
	}
}

func csvInvalid(msg string) error {
	return &fault.Error{Kind: fault.Invalid, Detail: "the CSV file cannot be loaded",
		Fields: []fault.FieldError{{Field: "file", Code: "bad_format", Message: msg}}}
}

// loadOne creates or updates one item of a bulk load in a transaction of
// its own and records the outcome. Only a failure of the database is
// returned.
func (s *Service) loadOne(ctx context.Context, inst string, line int, in Item, rep *LoadReport) error {
	it := in
	it.Institution = inst
	normalizeItem(&it)
	created := false
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadItem(tx, inst, it.Barcode)
		if err != nil && !errors.Is(err, fault.ErrNotFound) {
			return err
		}
		if it.Status == "" {
			it.Status = StatusAvailable
			if cur != nil {
				it.Status = cur.Status
			}
		}
		c, err := checkItem(tx, inst, &it)
		if err != nil {
			return err
		}
		if err := c.err("item"); err != nil {
			return err
		}
		if cur != nil {
			return s.saveItem(tx, cur, &it)
		}
		created = true
		now := s.clock()
		it.ID, it.Version, it.CreatedAt, it.UpdatedAt = keys.NewID(), 1, now, now
		return tx.Create(&it).Error
	})
	err = s.translate(err)
	if err == nil {
		if created {
			rep.Created++
		} else {
			rep.Updated++
		}
		return nil
	}
	if pe, ok := fault.As(err); ok {
		rej := Rejection{Line: line, Barcode: it.Barcode, Reason: pe.Detail, Fields: pe.Fields}
		if len(pe.Fields) > 0 {
			var parts []string
			for _, f := range pe.Fields {
				parts = append(parts, f.Field+": "+f.Message)
			}
			rej.Reason = strings.Join(parts, "; ")
		}
		rep.Rejected = append(rep.Rejected, rej)
		return nil
	}
	return err
}
