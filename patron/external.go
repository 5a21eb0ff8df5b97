package patron

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
)

// DeactivateMissing makes INACTIVE the active external users of how.Owner
// whose internal ids are not in seen: the users a full, clean load did not
// find in the SIS's file. Unless how.AllowStaff, STAFF records stay as
// they are. Each user made inactive is on the audit trail, committed with
// the change. It returns how many it changed.
func (s *Service) DeactivateMissing(ctx context.Context, inst string, how ExternalApply, seen map[string]bool) (int, error) {
	gone, err := s.missing(ctx, inst, how, seen)
	if err != nil {
		return 0, err
	}
	for chunk := range slices.Chunk(gone, 500) {
		err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			var pids []string
			if s.audit != nil {
				err := tx.Model(&User{}).Clauses(clause.Locking{Strength: "UPDATE"}).
					Where("id IN ? AND status = ?", chunk, StatusActive).Order("primary_id_key").Pluck("primary_id", &pids).Error
				if err != nil {
					return err
				}
			}
			err := tx.Model(&User{}).Where("id IN ? AND status = ?", chunk, StatusActive).
				Updates(map[string]any{"status": StatusInactive, "version": gorm.Expr("version + 1"), "updated_at": s.clock()}).Error
			if err != nil {
				return err
			}
			// The users' entries commit with the change, kept in one call.
			es := make([]AuditEvent, len(pids))
			for i, pid := range pids {
				es[i] = s.event(ctx, inst, AuditUpdate, pid, "user")
				es[i].Details = deactivated
			}
			return s.keepMany(ctx, es)
		})
		if err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}

// deactivated is the details of the entry of a user DeactivateMissing
// made inactive (see ChangeDetails).
var deactivated = ChangeDetails(&User{Status: StatusActive}, &User{Status: StatusInactive})

// CountMissing tells how many users DeactivateMissing would make inactive,
// and changes nobody: what a dry run reports.
func (s *Service) CountMissing(ctx context.Context, inst string, how ExternalApply, seen map[string]bool) (int, error) {
	gone, err := s.missing(ctx, inst, how, seen)
	return len(gone), err
}

// missing lists the ids of the users DeactivateMissing makes inactive.
func (s *Service) missing(ctx context.Context, inst string, how ExternalApply, seen map[string]bool) ([]string, error) {
	var ids []string
	q := s.conn(ctx).Model(&User{}).
		Where("institution = ? AND external_id = ? AND account_type = ? AND status = ?", inst, how.Owner, AccountExternal, StatusActive)
	if !how.AllowStaff {
		q = q.Where("record_type <> ?", RecordStaff)
	}
	err := q.Pluck("id", &ids).Error
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, id := range ids {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	return gone, nil
}

// RestoreSISFields hands retained fields of an external user back to the
// SIS: the manual changes of those fields are forgotten, and the next
// synchronize sets them from the SIS's record again. fields names retained
// fields (see RetainedFields); none means all of them. It returns the
// fields that were held by hand.
func (s *Service) RestoreSISFields(ctx context.Context, inst, primaryID string, fields []string) ([]string, error) {
	var bad []fault.FieldError
	for i, f := range fields {
		if !slices.Contains(RetainedFields, f) {
			bad = append(bad, fault.FieldError{Field: fmt.Sprintf("fields[%d]", i), Code: "unknown_value", Message: "must be one of: " + strings.Join(RetainedFields, ", ")})
		}
	}
	if len(bad) > 0 {
		return nil, invalid(bad...)
	}
	if len(fields) == 0 {
		fields = RetainedFields
	}
	var restored []string
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		u, err := loadUser(tx, inst, primaryID)
		if err != nil {
			return err
		}
		if !u.IsExternal() {
			return &fault.Error{Kind: fault.Refused, Detail: "only an external user's fields come from the SIS", Reasons: []string{fmt.Sprintf("user %q is internal", u.PrimaryID)}}
		}
		if err := tx.Model(&FieldOverride{}).Where("user_id = ? AND field IN ?", u.ID, fields).Pluck("field", &restored).Error; err != nil {
			return err
		}
		if err := tx.Where("user_id = ? AND field IN ?", u.ID, fields).Delete(&FieldOverride{}).Error; err != nil {
			return err
		}
		// Forget the fingerprint: the next synchronize applies the record
		// even when the SIS sends it unchanged.
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Update("sis_hash", "").Error; err != nil {
			return err
		}
		if s.audit == nil {
			return nil
		}
		e := s.event(ctx, inst, AuditUpdate, u.PrimaryID, "field provenance")
		e.Details = overridesDetails(restored)
		return s.keep(ctx, e)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	sort.Strings(restored)
	return restored, nil
}

// overridesDetails are the details of the entry of RestoreSISFields: the
// retained fields no longer held by hand, {"overrides":{"removed":[...]}}
// ("{}" for none).
func overridesDetails(restored []string) string {
	if len(restored) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(map[string]any{"overrides": map[string]any{"removed": slices.Sorted(slices.Values(restored))}})
	return string(b)
}

// EachOfProfile calls fn with every user whose external_id names profile,
// whole with segments, in a stable order, reading them a page at a time.
// Each user read is on the audit trail as exported, a page's users
// together, before fn is given any of them; when their entries cannot be
// written, it fails.
func (s *Service) EachOfProfile(ctx context.Context, inst, profile string, fn func(*User) error) error {
	db := s.conn(ctx)
	last := ""
	for {
		var page []User
		err := db.Where("institution = ? AND external_id = ? AND id > ?", inst, profile, last).Order("id").Limit(200).Find(&page).Error
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := loadSegmentsOf(db, page); err != nil {
			return err
		}
		// The page's exports are on the trail before any of it leaves.
		es := make([]AuditEvent, len(page))
		for i := range page {
			es[i] = AuditEvent{Action: AuditExport, PrimaryID: page[i].PrimaryID, What: "user"}
		}
		if err := s.RecordAuditMany(ctx, inst, es); err != nil {
			return err
		}
		for i := range page {
			if err := fn(s.finishRead(&page[i])); err != nil {
				return err
			}
		}
		last = page[len(page)-1].ID
	}
}

// loadSegmentsOf fills the segment lists of a page of users, one query per
// kind of segment.
func loadSegmentsOf(db *gorm.DB, users []User) error {
	ids := make([]string, len(users))
	at := make(map[string]*User, len(users))
	for i := range users {
		ids[i] = users[i].ID
		at[users[i].ID] = &users[i]
	}
	return firstErr(
		spread(db, ids, at, func(u *User, x Identifier) { u.Identifiers = append(u.Identifiers, x) }),
		spread(db, ids, at, func(u *User, x Address) { u.Addresses = append(u.Addresses, x) }),
		spread(db, ids, at, func(u *User, x Email) { u.Emails = append(u.Emails, x) }),
		spread(db, ids, at, func(u *User, x Phone) { u.Phones = append(u.Phones, x) }),
		spread(db, ids, at, func(u *User, x Note) { u.Notes = append(u.Notes, x) }),
		spread(db, ids, at, func(u *User, x Block) { u.Blocks = append(u.Blocks, x) }),
		spread(db, ids, at, func(u *User, x Statistic) { u.Statistics = append(u.Statistics, x) }),
		spread(db, ids, at, func(u *User, x ProxyFor) { u.ProxyFor = append(u.ProxyFor, x) }),
	)
}

func spread[T segmentRow](db *gorm.DB, ids []string, at map[string]*User, add func(*User, T)) func() error {
	return func() error {
		var rows []T
		if err := db.Where("user_id IN ?", ids).Order("id").Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			if u := at[r.segment().UserID]; u != nil {
				add(u, r)
			}
		}
		return nil
	}
}
