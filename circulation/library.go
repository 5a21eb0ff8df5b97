package circulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Library is a library of an institution: a place that lends items, with
// its own time zone (due dates end at 23:59 there) and calendar of closed
// days.
type Library struct {
	// ID (a UUIDv7) and Institution are set by the service.
	ID          string `json:"-" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// Code names the library (MAIN, SCIENCE); it is unique in its
	// institution whatever its case, and cannot be changed.
	Code string `json:"code" gorm:"size:64;not null"`
	// CodeKey is the code folded to lower case, the key it is unique on.
	CodeKey string `json:"-" gorm:"size:64;not null"`
	// Name is the library's name for people.
	Name string `json:"name" gorm:"size:255;not null"`
	// TimeZone is an IANA time zone such as America/New_York. Default: UTC.
	TimeZone string `json:"time_zone" gorm:"size:64;not null"`
	// PickupLocations are the codes of the places where patrons may collect
	// what they asked for.
	PickupLocations patron.Codes `json:"pickup_locations,omitempty" gorm:"size:1000"`
	// ClosedDates are the days the library is closed: a due date falling on
	// one moves to the next open day. Sent whole on every write.
	ClosedDates []ClosedDate `json:"closed_dates,omitempty" gorm:"-"`

	// Version counts the changes of the library; a replace must name the
	// version it was based on.
	Version   int       `json:"version" gorm:"not null"`
	CreatedAt time.Time `json:"created_date"`
	UpdatedAt time.Time `json:"updated_date"`
}

// TableName places libraries in the pk_ namespace of the host's database.
func (Library) TableName() string { return "pk_circ_libraries" }

// ClosedDate is one day a library is closed, with a note for people (a
// holiday's name, say).
type ClosedDate struct {
	// Date is the civil date, YYYY-MM-DD, in the library's time zone.
	Date string `json:"date"`
	// Note says why; optional.
	Note string `json:"note,omitempty"`
}

// closedDateRow is how a closed date is stored.
type closedDateRow struct {
	LibraryID   string `gorm:"primaryKey;size:36"`
	Date        string `gorm:"primaryKey;size:10"`
	Institution string `gorm:"size:64;not null"`
	Note        string `gorm:"size:255"`
}

func (closedDateRow) TableName() string { return "pk_circ_closed_dates" }

// Location returns the library's time zone (UTC when none is set).
func (l *Library) Location() (*time.Location, error) {
	return loadZone(l.TimeZone)
}

func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone", tz)
	}
	return time.LoadLocation(tz)
}

func normalizeLibrary(l *Library) {
	trim(&l.Code, &l.Name, &l.TimeZone)
	if l.TimeZone == "" {
		l.TimeZone = "UTC"
	}
	l.CodeKey = keys.Fold(l.Code)
	var locs patron.Codes
	for _, p := range l.PickupLocations {
		if p = strings.TrimSpace(p); p != "" {
			locs = append(locs, p)
		}
	}
	l.PickupLocations = locs
	for i := range l.ClosedDates {
		trim(&l.ClosedDates[i].Date, &l.ClosedDates[i].Note)
	}
}

func validateLibrary(l *Library) error {
	var c checker
	c.record(l)
	c.code("code", l.Code, true, 64)
	c.text("name", l.Name, true, 255)
	c.text("time_zone", l.TimeZone, false, 64)
	if _, err := loadZone(l.TimeZone); err != nil {
		c.add("time_zone", "unknown_value", "%q is not an IANA time zone", l.TimeZone)
	}
	for i, p := range l.PickupLocations {
		c.code(fmt.Sprintf("pickup_locations[%d]", i), p, true, 64)
	}
	if len(strings.Join(l.PickupLocations, ",")) > 1000 {
		c.add("pickup_locations", "too_long", "hold more than 1000 characters in all")
	}
	seen := map[string]bool{}
	for i, d := range l.ClosedDates {
		f := fmt.Sprintf("closed_dates[%d]", i)
		c.date(f+".date", d.Date, true)
		c.text(f+".note", d.Note, false, 255)
		if d.Date != "" && seen[d.Date] {
			c.add(f+".date", "duplicate", "%s is listed twice", d.Date)
		}
		seen[d.Date] = true
	}
	if err := c.err("library"); err != nil {
		return err
	}
	// Checked in the order given (field errors name the caller's
	// indices), kept in date order.
	slices.SortFunc(l.ClosedDates, func(a, b ClosedDate) int { return strings.Compare(a.Date, b.Date) })
	return nil
}

// CreateLibrary adds a library to an institution. A code already taken (in
// any case) is a Conflict.
func (s *Service) CreateLibrary(ctx context.Context, inst string, in *Library) (*Library, error) {
	l := *in
	l.ClosedDates = slices.Clone(in.ClosedDates)
	l.Institution = inst
	normalizeLibrary(&l)
	if err := validateLibrary(&l); err != nil {
		return nil, err
	}
	now := s.clock()
	l.ID, l.Version, l.CreatedAt, l.UpdatedAt = keys.NewID(), 1, now, now
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Library{}).Where("institution = ? AND code_key = ?", inst, l.CodeKey).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return conflict("library code %q is already taken", l.Code)
		}
		if err := tx.Create(&l).Error; err != nil {
			return err
		}
		return insertClosedDates(tx, &l)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return &l, nil
}

// Library returns a library by code (any case), with its closed dates.
func (s *Service) Library(ctx context.Context, inst, code string) (*Library, error) {
	l, err := loadLibrary(s.conn(ctx), inst, code)
	if err != nil {
		return nil, s.translate(err)
	}
	return l, nil
}

// Libraries returns every library of an institution by code, with their
// closed dates.
func (s *Service) Libraries(ctx context.Context, inst string) ([]Library, error) {
	db := s.conn(ctx)
	var out []Library
	if err := db.Where("institution = ?", inst).Order("code_key").Find(&out).Error; err != nil {
		return nil, err
	}
	var rows []closedDateRow
	if err := db.Where("institution = ?", inst).Order("library_id, date").Find(&rows).Error; err != nil {
		return nil, err
	}
	byLib := map[string][]ClosedDate{}
	for _, r := range rows {
		byLib[r.LibraryID] = append(byLib[r.LibraryID], ClosedDate{Date: r.Date, Note: r.Note})
	}
	for i := range out {
		out[i].ClosedDates = byLib[out[i].ID]
	}
	if out == nil {
		out = []Library{}
	}
	return out, nil
}

// ReplaceLibrary replaces a library with in: name, time zone, pickup
// locations and the whole calendar of closed dates. version is the version
// the caller read; a library changed since is Stale. The code stays: in
// may leave it empty or repeat it (in any case).
func (s *Service) ReplaceLibrary(ctx context.Context, inst, code string, version int, in *Library) (*Library, error) {
	var out *Library
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadLibrary(tx, inst, code)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return stale("the library is at version %d, not %d: read it again", cur.Version, version)
		}
		l := *in
		l.ClosedDates = slices.Clone(in.ClosedDates)
		if strings.TrimSpace(l.Code) == "" {
			l.Code = cur.Code
		}
		normalizeLibrary(&l)
		if l.CodeKey != cur.CodeKey {
			return &fault.Error{Kind: fault.Invalid, Detail: "the library is not valid", Fields: []fault.FieldError{{Field: "code", Code: "read_only", Message: "a library's code cannot be changed"}}}
		}
		if err := validateLibrary(&l); err != nil {
			return err
		}
		l.ID, l.Institution, l.Code, l.CodeKey = cur.ID, inst, cur.Code, cur.CodeKey
		l.Version, l.CreatedAt, l.UpdatedAt = cur.Version+1, cur.CreatedAt, s.clock()
		res := tx.Model(&Library{}).Where("id = ? AND version = ?", cur.ID, cur.Version).
			Select("name", "time_zone", "pickup_locations", "version", "updated_at").Updates(&l)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("the library changed while it was being saved: read it again")
		}
		if err := tx.Where("library_id = ?", cur.ID).Delete(&closedDateRow{}).Error; err != nil {
			return err
		}
		if err := insertClosedDates(tx, &l); err != nil {
			return err
		}
		out = &l
		return nil
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return out, nil
}

// DeleteLibrary removes a library and its calendar. A library that items
// belong to is Refused, the count of its items given.
func (s *Service) DeleteLibrary(ctx context.Context, inst, code string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadLibrary(tx, inst, code)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Item{}).Where("institution = ? AND library = ?", inst, cur.Code).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return refused(fmt.Sprintf("library %q cannot be deleted", cur.Code), cause(ReasonLibraryHasItems, "items", strconv.FormatInt(n, 10)))
		}
		if err := tx.Where("library_id = ?", cur.ID).Delete(&closedDateRow{}).Error; err != nil {
			return err
		}
		return tx.Where("id = ?", cur.ID).Delete(&Library{}).Error
	})
	return s.translate(err)
}

// NextOpenDay returns the first day, on or after date (YYYY-MM-DD), that
// the library is open. A library closed for more than a year from date is
// Refused.
func (s *Service) NextOpenDay(ctx context.Context, inst, library, date string) (string, error) {
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(date))
	if err != nil {
		return "", &fault.Error{Kind: fault.Invalid, Detail: "the date is not valid", Fields: []fault.FieldError{{Field: "date", Code: "bad_format", Message: "is not a date written YYYY-MM-DD"}}}
	}
	db := s.conn(ctx)
	l, err := libraryRow(db, inst, library)
	if err != nil {
		return "", s.translate(err)
	}
	open, err := nextOpenDay(db, l, d)
	if err != nil {
		return "", s.translate(err)
	}
	return open.Format(time.DateOnly), nil
}

// maxClosedRun is how many days in a row nextOpenDay looks through.
const maxClosedRun = 366

// nextOpenDay returns the first day on or after d (a date at midnight,
// any zone) that is not among the library's closed dates.
func nextOpenDay(db *gorm.DB, l *Library, d time.Time) (time.Time, error) {
	from := d.Format(time.DateOnly)
	to := d.AddDate(0, 0, maxClosedRun).Format(time.DateOnly)
	var dates []string
	if err := db.Model(&closedDateRow{}).Where("library_id = ? AND date >= ? AND date <= ?", l.ID, from, to).
		Order("date").Pluck("date", &dates).Error; err != nil {
		return time.Time{}, err
	}
	closed := map[string]bool{}
	for _, x := range dates {
		closed[x] = true
	}
	for i := 0; i <= maxClosedRun; i++ {
		day := d.AddDate(0, 0, i)
		if !closed[day.Format(time.DateOnly)] {
			return day, nil
		}
	}
	return time.Time{}, refused(fmt.Sprintf("library %q has no open day within a year of %s", l.Code, from),
		cause(ReasonNoOpenDay, "library", l.Code, "from", from, "to", to))
}

func loadLibrary(db *gorm.DB, inst, code string) (*Library, error) {
	l, err := libraryRow(db, inst, code)
	if err != nil {
		return nil, err
	}
	var rows []closedDateRow
	if err := db.Where("library_id = ?", l.ID).Order("date").Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		l.ClosedDates = append(l.ClosedDates, ClosedDate{Date: r.Date, Note: r.Note})
	}
	return l, nil
}

// libraryRow reads a library without its closed dates: what a due date
// needs (its time zone; nextOpenDay reads the closed dates it meets).
func libraryRow(db *gorm.DB, inst, code string) (*Library, error) {
	var l Library
	if !patron.Findable(code) {
		return nil, notFound("no library %q", strings.TrimSpace(code))
	}
	err := db.Where("institution = ? AND code_key = ?", inst, keys.Fold(code)).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no library %q", strings.TrimSpace(code))
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func insertClosedDates(tx *gorm.DB, l *Library) error {
	if len(l.ClosedDates) == 0 {
		return nil
	}
	rows := make([]closedDateRow, len(l.ClosedDates))
	for i, d := range l.ClosedDates {
		rows[i] = closedDateRow{LibraryID: l.ID, Date: d.Date, Institution: l.Institution, Note: d.Note}
	}
	return tx.CreateInBatches(&rows, 500).Error
}
