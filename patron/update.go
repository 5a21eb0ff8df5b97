package patron

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
)

// FieldOverride remembers that staff changed a retained field of an
// external user by hand; the next synchronize keeps that value (field
// provenance) until the field is handed back to the SIS.
type FieldOverride struct {
	UserID    string    `json:"-" gorm:"primaryKey;size:36"`
	Field     string    `json:"field" gorm:"primaryKey;size:64"`
	ChangedBy string    `json:"changed_by" gorm:"size:255"`
	ChangedAt time.Time `json:"changed_at"`
}

// TableName implements gorm's Tabler.
func (FieldOverride) TableName() string { return "pk_user_field_overrides" }

// Overrides returns the retained fields of a user that staff changed by
// hand, with who changed them and when.
func (s *Service) Overrides(ctx context.Context, inst, primaryID string) ([]FieldOverride, error) {
	u, err := loadUser(s.conn(ctx), inst, primaryID)
	if err != nil {
		return nil, s.translate(err)
	}
	var out []FieldOverride
	if err := s.conn(ctx).Where("user_id = ?", u.ID).Order("field").Find(&out).Error; err != nil {
		return nil, err
	}
	if err := s.record(ctx, inst, AuditRead, u.PrimaryID, "field provenance"); err != nil {
		return nil, err
	}
	return out, nil
}

// Replace replaces a user record with in, as Alma's PUT does: core fields
// are taken from in and every segment list is swapped whole. version is the
// version the caller read; a record changed since is Stale.
//
// On an external user staff may change only the retained fields and the
// Internal segments; the External ones must be sent back as they are (or
// left out, which keeps them). Changed retained fields are remembered.
func (s *Service) Replace(ctx context.Context, inst, primaryID string, version int, in *User) (*User, error) {
	var before, after *User
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := loadUser(tx, inst, primaryID)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return &fault.Error{Kind: fault.Stale, Detail: fmt.Sprintf("the user is at version %d, not %d: read it again", cur.Version, version)}
		}
		before = cloneUser(cur)
		u := *in
		u.Institution, u.ID = inst, cur.ID
		normalizeCore(&u)
		keepUnsent(&u, cur)
		var fields []fault.FieldError
		if cur.IsExternal() {
			fields = externalCoreRule(cur, &u)
		} else if u.AccountType == AccountExternal {
			fields = append(fields, fault.FieldError{Field: "account_type", Code: "managed_by_sis", Message: "an internal user cannot be made external by hand; the SIS takes users over by synchronize"})
		}
		fields = append(fields, s.mergeSegments(ctx, cur, &u)...)
		if len(fields) > 0 {
			return invalid(fields...)
		}
		if err := s.validateUser(&u, cur.PrimaryID); err != nil {
			return err
		}
		if u.PrimaryIDKey != cur.PrimaryIDKey {
			if err := checkPrimaryIDFree(tx, inst, u.PrimaryIDKey, cur.ID); err != nil {
				return err
			}
		}
		if err := checkIdentifiersFree(tx, inst, u.Identifiers, cur.ID); err != nil {
			return err
		}
		u.PINHash = cur.PINHash
		if u.PINNumber != "" {
			if u.PINHash, err = s.hashPIN(u.PINNumber); err != nil {
				return err
			}
			u.PINNumber = ""
		}
		now := s.clock()
		u.Version, u.CreatedAt, u.UpdatedAt = cur.Version+1, cur.CreatedAt, now
		if err := saveCore(tx, &u, cur.Version); err != nil {
			return err
		}
		if cur.IsExternal() {
			if err := s.recordOverrides(ctx, tx, cur, &u, in.PINNumber != ""); err != nil {
				return err
			}
		}
		only := "" // staff replace every segment of an internal user...
		if cur.IsExternal() {
			only = SegmentInternal // ...and only the Internal ones of an external user
		}
		if err := deleteSegments(tx, cur.ID, only, nil); err != nil {
			return err
		}
		held := map[string]bool{}
		eachSegment(cur, func(_ string, seg *Segment) { held[seg.ID] = true })
		if err := insertSegments(tx, &u, only, held); err != nil {
			return err
		}
		after, err = loadUserByID(tx, inst, cur.ID)
		if err != nil {
			return err
		}
		return s.recordChange(ctx, inst, AuditUpdate, before, after)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	out := s.finishRead(after)
	s.changed(ctx, Change{Institution: inst, Action: Updated, Before: s.finishRead(before), After: out})
	return out, nil
}

// keepUnsent keeps the stored enumerations that a replacement left out:
// an omitted record_type must not demote a staff record to PUBLIC, nor an
// omitted status reactivate an INACTIVE user.
func keepUnsent(u, cur *User) {
	if u.AccountType == "" {
		u.AccountType = cur.AccountType
	}
	if u.RecordType == "" {
		u.RecordType = cur.RecordType
	}
	if u.Status == "" {
		u.Status = cur.Status
	}
}

// saveCore writes the core fields of u if the stored row is still at the
// version read; otherwise the record is Stale.
func saveCore(tx *gorm.DB, u *User, readVersion int) error {
	res := tx.Model(&User{}).
		Where("id = ? AND version = ?", u.ID, readVersion).
		Select("*").Omit(append([]string{"id", "institution", "created_at"}, segmentAssociations...)...).
		Updates(u)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return &fault.Error{Kind: fault.Stale, Detail: "the user changed while it was being saved: read it again"}
	}
	return nil
}

// externalCoreRule refuses changes to core fields that the SIS owns.
func externalCoreRule(cur, u *User) []fault.FieldError {
	owned := []struct {
		field    string
		old, new string
	}{
		{"primary_id", cur.PrimaryID, u.PrimaryID},
		{"account_type", cur.AccountType, u.AccountType},
		{"external_id", cur.ExternalID, u.ExternalID},
		{"record_type", cur.RecordType, u.RecordType},
		{"first_name", cur.FirstName, u.FirstName},
		{"middle_name", cur.MiddleName, u.MiddleName},
		{"last_name", cur.LastName, u.LastName},
		{"user_title", cur.UserTitle, u.UserTitle},
		{"gender", cur.Gender, u.Gender},
		{"birth_date", cur.BirthDate, u.BirthDate},
		{"job_description", cur.JobDescription, u.JobDescription},
		{"status", cur.Status, u.Status},
		{"expiry_date", cur.ExpiryDate, u.ExpiryDate},
		{"purge_date", cur.PurgeDate, u.PurgeDate},
	}
	var out []fault.FieldError
	for _, f := range owned {
		if f.old != f.new {
			out = append(out, fault.FieldError{Field: f.field, Code: "managed_by_sis", Message: "is kept by the SIS for an external user; only user_group, job_category, pin_number, preferred_language, campus_code and rs_library may be changed by hand"})
		}
	}
	return out
}

// mergeSegments prepares the segment lists of u against the stored cur.
// For an external user the External entries of cur are kept: any sent back
// must be unchanged, and entries that staff add are Internal.
func (s *Service) mergeSegments(ctx context.Context, cur, u *User) []fault.FieldError {
	var fields []fault.FieldError
	if !cur.IsExternal() {
		eachSegment(u, func(path string, seg *Segment) { fields = append(fields, internalOnly(path, seg)...) })
		s.stampSegments(ctx, u, cur)
		return fields
	}
	stored := map[string]string{} // id -> fingerprint of stored External segments
	eachSegment(cur, func(path string, seg *Segment) {
		if seg.IsExternal() {
			stored[seg.ID] = ""
		}
	})
	fp := fingerprints(cur)
	for id := range stored {
		stored[id] = fp[id]
	}
	sent := fingerprints(u)
	eachSegment(u, func(path string, seg *Segment) {
		if want, ok := stored[seg.ID]; ok && seg.ID != "" {
			if sent[seg.ID] != want {
				fields = append(fields, fault.FieldError{Field: path, Code: "managed_by_sis", Message: "an External entry cannot be changed by hand; add an Internal one instead"})
			}
			seg.SegmentType = SegmentExternal
			return
		}
		fields = append(fields, internalOnly(path, seg)...)
	})
	// External entries left out are kept: put them back so that the
	// rules over whole lists (one preferred entry) see them.
	present := map[string]bool{}
	eachSegment(u, func(_ string, seg *Segment) { present[seg.ID] = true })
	keepMissing(&u.Identifiers, cur.Identifiers, present)
	keepMissing(&u.Addresses, cur.Addresses, present)
	keepMissing(&u.Emails, cur.Emails, present)
	keepMissing(&u.Phones, cur.Phones, present)
	keepMissing(&u.Notes, cur.Notes, present)
	keepMissing(&u.Blocks, cur.Blocks, present)
	keepMissing(&u.Statistics, cur.Statistics, present)
	keepMissing(&u.ProxyFor, cur.ProxyFor, present)
	s.stampSegments(ctx, u, cur)
	return fields
}

// internalOnly checks a segment that staff send: an empty type is
// Internal, External is refused (only the SIS adds those), and anything else
// is left for the validator to name.
func internalOnly(path string, seg *Segment) []fault.FieldError {
	switch seg.SegmentType {
	case SegmentExternal:
		return []fault.FieldError{{Field: path + ".segment_type", Code: "managed_by_sis", Message: "External entries come only from the SIS; add Internal ones"}}
	case "":
		seg.SegmentType = SegmentInternal
	}
	return nil
}

// segmentRow is any segment type: they all embed Segment.
type segmentRow interface {
	segment() Segment
}

func keepMissing[T segmentRow](dst *[]T, stored []T, present map[string]bool) {
	for _, x := range stored {
		if seg := x.segment(); seg.IsExternal() && !present[seg.ID] {
			*dst = append(*dst, x)
		}
	}
}

// fingerprints gives, per segment id, the content a client may not change
// on an External segment: its JSON without the fields the server keeps.
func fingerprints(u *User) map[string]string {
	out := map[string]string{}
	add := func(seg Segment, v any) {
		b, _ := json.Marshal(v) // plain structs of strings, bools and times: cannot fail
		out[seg.ID] = string(b)
	}
	for _, x := range u.Identifiers {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	for _, x := range u.Addresses {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	for _, x := range u.Emails {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	for _, x := range u.Phones {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	for _, x := range u.Notes {
		x.SegmentType, x.CreatedDate, x.CreatedBy = "", time.Time{}, ""
		add(x.Segment, x)
	}
	for _, x := range u.Blocks {
		x.SegmentType, x.CreatedDate, x.CreatedBy = "", time.Time{}, ""
		add(x.Segment, x)
	}
	for _, x := range u.Statistics {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	for _, x := range u.ProxyFor {
		x.SegmentType = ""
		add(x.Segment, x)
	}
	return out
}

// recordOverrides remembers the retained fields that this change set by hand.
func (s *Service) recordOverrides(ctx context.Context, tx *gorm.DB, cur, u *User, pinChanged bool) error {
	changed := map[string]bool{
		"user_group":         cur.UserGroup != u.UserGroup,
		"job_category":       cur.JobCategory != u.JobCategory,
		"pin_number":         pinChanged,
		"preferred_language": cur.PreferredLanguage != u.PreferredLanguage,
		"campus_code":        cur.CampusCode != u.CampusCode,
		"rs_library":         cur.RSLibrary != u.RSLibrary,
	}
	now := s.clock()
	by := actorOf(ctx).ID
	for _, f := range RetainedFields {
		if !changed[f] {
			continue
		}
		o := FieldOverride{UserID: cur.ID, Field: f, ChangedBy: by, ChangedAt: now}
		if err := tx.Where("user_id = ? AND field = ?", cur.ID, f).Delete(&FieldOverride{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&o).Error; err != nil {
			return err
		}
	}
	return nil
}

func cloneUser(u *User) *User {
	c := *u
	c.Identifiers = slices.Clone(u.Identifiers)
	c.Addresses = slices.Clone(u.Addresses)
	c.Emails = slices.Clone(u.Emails)
	c.Phones = slices.Clone(u.Phones)
	c.Notes = slices.Clone(u.Notes)
	c.Blocks = slices.Clone(u.Blocks)
	c.Statistics = slices.Clone(u.Statistics)
	c.ProxyFor = slices.Clone(u.ProxyFor)
	return &c
}
