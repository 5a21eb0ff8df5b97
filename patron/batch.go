package patron

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
)

// BatchFields are the core fields UpdateMany sets or clears on many users
// at once (Alma's "Update User Information" job), by JSON name.
var BatchFields = []string{"user_group", "expiry_date", "purge_date", "status", "campus_code", "job_category", "preferred_language", "rs_library"}

// batchLimits are the longest values of BatchFields (0: a date or a
// status, checked apart).
var batchLimits = map[string]int{"user_group": 64, "campus_code": 64, "job_category": 255, "preferred_language": 16, "rs_library": 64}

// Outcomes of a user in UpdateMany.
const (
	BatchChanged   = "changed"
	BatchUnchanged = "unchanged"
	BatchRefused   = "refused"
)

// BatchOutcome is what UpdateMany did (or, dry, would do) to one user.
type BatchOutcome struct {
	// UserID is the user's internal id; PrimaryID their primary_id.
	UserID    string `json:"-"`
	PrimaryID string `json:"primary_id"`
	// Outcome is BatchChanged, BatchUnchanged or BatchRefused.
	Outcome string `json:"outcome"`
	// Changes are, per field changed, its value before and after ("" for
	// none): {"user_group": ["GRAD", "ALUMNI"]}; none for a refused user.
	Changes map[string][2]string `json:"changes,omitempty"`
	// Segments are the blocks, notes and statistics added or removed.
	Segments []SegmentChange `json:"segments,omitempty"`
	// Reasons say why a refused user was left as they were, or what of
	// the change a changed user's rules refused: the fields and segments
	// the SIS keeps for an external user, or (RestoreMany) a change since.
	Reasons []fault.FieldError `json:"reasons,omitempty"`
	// Version is the record's version after (a change: the new one).
	Version int `json:"-"`
}

// DescribeChanges says each change of a batch in a line, for reports:
// "field: before -> after" per field (in the order of the fields' names),
// then "kind: + value" or "kind: - value" per segment added or removed.
func DescribeChanges(changes map[string][2]string, segments []SegmentChange) []string {
	out := make([]string, 0, len(changes)+len(segments))
	for _, f := range slices.Sorted(maps.Keys(changes)) {
		out = append(out, f+": "+changes[f][0]+" -> "+changes[f][1])
	}
	for _, sc := range segments {
		sign := "+"
		if sc.Op == SegmentRemoved {
			sign = "-"
		}
		out = append(out, sc.Kind+": "+sign+" "+sc.Value)
	}
	return out
}

// CheckBatchFields refuses, as Invalid naming each field, values no user
// may take: a field not in BatchFields, a date not written YYYY-MM-DD, a
// status other than ACTIVE or INACTIVE (or cleared), text too long or with
// control characters. Values "" clear the field; status is upper-cased.
func CheckBatchFields(set map[string]string) error {
	bad := checkFields(set)
	if len(set) == 0 {
		bad = append(bad, fault.FieldError{Field: "fields", Code: "required", Message: "name at least one field to set or clear"})
	}
	if len(bad) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the change is not valid", Fields: bad}
	}
	return nil
}

// checkFields is what CheckBatchFields refuses of set, none given
// aside.
func checkFields(set map[string]string) []fault.FieldError {
	var bad []fault.FieldError
	for _, f := range slices.Sorted(maps.Keys(set)) {
		v := set[f]
		switch {
		case !slices.Contains(BatchFields, f):
			bad = append(bad, fault.FieldError{Field: f, Code: "unknown_field", Message: "a job sets or clears only " + strings.Join(BatchFields, ", ")})
		case f == "status":
			set[f] = strings.ToUpper(strings.TrimSpace(v))
			if set[f] != StatusActive && set[f] != StatusInactive {
				bad = append(bad, fault.FieldError{Field: f, Code: "unknown_value", Message: "must be ACTIVE or INACTIVE"})
			}
		case f == "expiry_date" || f == "purge_date":
			if _, err := time.Parse(time.DateOnly, v); v != "" && err != nil {
				bad = append(bad, fault.FieldError{Field: f, Code: "invalid_date", Message: "must be a date written YYYY-MM-DD, or empty to clear it"})
			}
		default:
			if e := TextError(f, v, false); e != nil {
				bad = append(bad, *e)
			} else if utf8.RuneCountInString(v) > batchLimits[f] {
				bad = append(bad, fault.FieldError{Field: f, Code: "too_long", Message: "is too long"})
			}
		}
	}
	return bad
}

// coreValue is the stored value of the batch field f of u, and where it
// lives.
func coreValue(u *User, f string) *string {
	switch f {
	case "user_group":
		return &u.UserGroup
	case "expiry_date":
		return &u.ExpiryDate
	case "purge_date":
		return &u.PurgeDate
	case "status":
		return &u.Status
	case "campus_code":
		return &u.CampusCode
	case "job_category":
		return &u.JobCategory
	case "preferred_language":
		return &u.PreferredLanguage
	case "rs_library":
		return &u.RSLibrary
	}
	return nil
}

// UpdateMany sets the fields of set (JSON name to value, "" to clear;
// checked by CheckBatchFields) on the users of inst whose internal ids
// are ids, in one transaction of a few statements whatever their number:
// the rows are locked and read at once, changed by one UPDATE, and each
// changed user's entry (AuditUpdate, "user", ChangeDetails) is kept in
// one call with the change; the listeners are told of each after commit.
//
// The rules of the record hold per user: on an external user, a field the
// SIS keeps (status, expiry_date, purge_date) is not changed and is named
// in the user's Reasons, while the rest of the change (the retained
// fields, the library's own segments) applies to them: the user is
// changed when any of it changes something, refused when none does. A
// retained field changed on an external user is remembered (Overrides) as
// a change by hand would be. A user whose fields already hold the values
// is unchanged. An id no user of inst holds is left out. With dry,
// nothing is written and the outcomes say what would be done.
func (s *Service) UpdateMany(ctx context.Context, inst string, ids []string, set map[string]string, dry bool) ([]BatchOutcome, error) {
	return s.ChangeMany(ctx, inst, ids, BatchChange{Fields: set}, dry)
}

// ChangeMany is UpdateMany of a whole change: core fields and segments
// added or removed (see BatchSegments), checked by CheckBatch. Each user
// changed is on the audit trail once, with the fields and the segments
// changed (ChangeDetails), and their record's version moves on.
func (s *Service) ChangeMany(ctx context.Context, inst string, ids []string, c BatchChange, dry bool) ([]BatchOutcome, error) {
	if err := CheckBatch(&c); err != nil {
		return nil, err
	}
	items := make([]BatchItem, len(ids))
	for i, id := range ids {
		items[i] = BatchItem{UserID: id, Fields: c.Fields, Segments: &c.BatchSegments}
	}
	return s.applyMany(ctx, inst, items, dry)
}

// BatchItem is one user's change in RestoreMany: the fields to set (JSON
// name to value, "" to clear), if the record is still at Version.
type BatchItem struct {
	UserID  string
	Version int
	Fields  map[string]string
	// Segments are segments to add or remove (ChangeMany).
	Segments *BatchSegments
	// Undo are segment changes to undo (RestoreMany): an added one is
	// taken away, a removed one put back.
	Undo []SegmentChange
}

// ChangedSince is the code of the reason RestoreMany gives for a user
// whose record changed after the version it was to restore.
const ChangedSince = "changed_since"

// RestoreMany is UpdateMany with fields of each user's own, each applied
// only if the user's record is still at the item's version (what undoes
// a batch of changes: a user changed since is refused with the reason
// ChangedSince and left as they are). Users given the same fields are
// changed by one UPDATE.
func (s *Service) RestoreMany(ctx context.Context, inst string, items []BatchItem) ([]BatchOutcome, error) {
	for _, it := range items {
		if bad := checkFields(it.Fields); len(bad) > 0 {
			return nil, &fault.Error{Kind: fault.Invalid, Detail: "the change is not valid", Fields: bad}
		}
	}
	return s.applyMany(ctx, inst, items, false)
}

// applyMany is UpdateMany and RestoreMany: items with a Version refuse a
// user whose record is at another.
func (s *Service) applyMany(ctx context.Context, inst string, items []BatchItem, dry bool) ([]BatchOutcome, error) {
	byID := make(map[string]BatchItem, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		byID[it.UserID] = it
		ids[i] = it.UserID
	}
	var out []BatchOutcome
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		out = nil
		var users []User
		q := tx.Where("institution = ? AND id IN ?", inst, ids).Order("primary_id_key")
		if !dry {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Find(&users).Error; err != nil {
			return err
		}
		withSegs := slices.ContainsFunc(items, func(it BatchItem) bool { return (it.Segments != nil && !it.Segments.empty()) || len(it.Undo) > 0 })
		var held heldSegments
		if withSegs {
			var err error
			if held, err = loadSegments(tx, ids); err != nil {
				return err
			}
		}
		now := s.clock()
		by := actorOf(ctx).ID
		var segChanges []SegmentChange
		groups := map[string][]string{} // fields' key: users changed to them
		groupFields := map[string]map[string]string{}
		var events []AuditEvent
		overrides := map[string][]string{} // field: external users whose retained field changed
		var afters []*User
		var befores []*User
		for i := range users {
			before := &users[i]
			it := byID[before.ID]
			fields := slices.Sorted(maps.Keys(it.Fields))
			after := cloneUser(before)
			o := BatchOutcome{UserID: before.ID, PrimaryID: before.PrimaryID, Outcome: BatchUnchanged, Version: before.Version}
			if it.Version != 0 && it.Version != before.Version {
				o.Outcome = BatchRefused
				o.Reasons = []fault.FieldError{{Field: "version", Code: ChangedSince, Message: fmt.Sprintf("the user changed since (version %d, not %d): left as they are", before.Version, it.Version)}}
				out = append(out, o)
				continue
			}
			for _, f := range fields {
				p := coreValue(after, f)
				if *p == it.Fields[f] {
					continue
				}
				if o.Changes == nil {
					o.Changes = map[string][2]string{}
				}
				o.Changes[f] = [2]string{*p, it.Fields[f]}
				*p = it.Fields[f]
			}
			applied := it.Fields
			if before.IsExternal() {
				// The fields the SIS keeps are left as they are; the
				// rest of the change goes on.
				kept := externalCoreRule(before, after)
				if len(kept) > 0 {
					applied = maps.Clone(it.Fields)
				}
				for _, r := range kept {
					if p := coreValue(after, r.Field); p != nil {
						*p = *coreValue(before, r.Field)
					}
					delete(o.Changes, r.Field)
					delete(applied, r.Field)
				}
				o.Reasons = append(o.Reasons, kept...)
			}
			if len(o.Changes) == 0 {
				o.Changes = nil
			}
			if withSegs && ((it.Segments != nil && !it.Segments.empty()) || len(it.Undo) > 0) {
				before.Blocks, before.Notes, before.Statistics = held.blocks[before.ID], held.notes[before.ID], held.statistics[before.ID]
				after.Blocks, after.Notes, after.Statistics = slices.Clone(before.Blocks), slices.Clone(before.Notes), slices.Clone(before.Statistics)
				var reasons []fault.FieldError
				o.Segments, reasons = segmentEdits(after, before.IsExternal(), it.Segments, it.Undo, by, now)
				o.Reasons = append(o.Reasons, reasons...)
			}
			switch {
			case len(o.Changes) == 0 && len(o.Segments) == 0 && len(o.Reasons) > 0:
				o.Outcome = BatchRefused
			case len(o.Changes) > 0 || len(o.Segments) > 0:
				o.Outcome = BatchChanged
				o.Version = before.Version + 1
				segChanges = append(segChanges, o.Segments...)
				key := fieldsKey(applied)
				groups[key] = append(groups[key], before.ID)
				groupFields[key] = applied
				after.Version = before.Version + 1
				befores, afters = append(befores, before), append(afters, after)
				ev := s.event(ctx, inst, AuditUpdate, before.PrimaryID, "user")
				ev.Details = ChangeDetails(before, after)
				events = append(events, ev)
				if before.IsExternal() {
					for f := range o.Changes {
						if slices.Contains(RetainedFields, f) {
							overrides[f] = append(overrides[f], before.ID)
						}
					}
				}
			}
			out = append(out, o)
		}
		if dry || len(groups) == 0 {
			return nil
		}
		if err := writeSegments(tx, segChanges); err != nil {
			return err
		}
		for _, key := range slices.Sorted(maps.Keys(groups)) {
			cols := map[string]any{"version": gorm.Expr("version + 1"), "updated_at": now}
			for f, v := range groupFields[key] {
				cols[f] = v
			}
			if err := tx.Model(&User{}).Where("institution = ? AND id IN ?", inst, groups[key]).Updates(cols).Error; err != nil {
				return err
			}
		}
		var rows []FieldOverride
		for _, f := range slices.Sorted(maps.Keys(overrides)) {
			if err := tx.Where("field = ? AND user_id IN ?", f, overrides[f]).Delete(&FieldOverride{}).Error; err != nil {
				return err
			}
			for _, id := range overrides[f] {
				rows = append(rows, FieldOverride{UserID: id, Field: f, ChangedBy: by, ChangedAt: now})
			}
		}
		if len(rows) > 0 {
			if err := tx.Create(&rows).Error; err != nil {
				return err
			}
		}
		if s.audit != nil {
			if err := s.keepMany(ctx, events); err != nil {
				return err
			}
		}
		for i := range afters {
			afters[i].UpdatedAt = now
			s.changed(ctx, Change{Institution: inst, Action: Updated, Before: s.finishRead(befores[i]), After: s.finishRead(afters[i])})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fieldsKey is a key of the fields and values of a change.
func fieldsKey(fields map[string]string) string {
	var b strings.Builder
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		b.WriteString(f)
		b.WriteByte(0)
		b.WriteString(fields[f])
		b.WriteByte(0)
	}
	return b.String()
}
