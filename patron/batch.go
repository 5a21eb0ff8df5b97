package patron

import (
	"context"
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
	// none): {"user_group": ["GRAD", "ALUMNI"]}.
	Changes map[string][2]string `json:"changes,omitempty"`
	// Reasons say why a refused user was left as they were: the fields
	// the SIS keeps for an external user.
	Reasons []fault.FieldError `json:"reasons,omitempty"`
}

// CheckBatchFields refuses, as Invalid naming each field, values no user
// may take: a field not in BatchFields, a date not written YYYY-MM-DD, a
// status other than ACTIVE or INACTIVE (or cleared), text too long or with
// control characters. Values "" clear the field; status is upper-cased.
func CheckBatchFields(set map[string]string) error {
	var bad []fault.FieldError
	for _, f := range slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	}) {
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
	if len(set) == 0 {
		bad = append(bad, fault.FieldError{Field: "fields", Code: "required", Message: "name at least one field to set or clear"})
	}
	if len(bad) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the change is not valid", Fields: bad}
	}
	return nil
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
// The rules of the record hold per user: on an external user, changing a
// field the SIS keeps (status, expiry_date, purge_date) refuses that user,
// named with the fields, and the others go on; a retained field changed
// on an external user is remembered (Overrides) as a change by hand would
// be. A user whose fields already hold the values is unchanged. An id no
// user of inst holds is left out. With dry, nothing is written and the
// outcomes say what would be done.
func (s *Service) UpdateMany(ctx context.Context, inst string, ids []string, set map[string]string, dry bool) ([]BatchOutcome, error) {
	if err := CheckBatchFields(set); err != nil {
		return nil, err
	}
	fields := slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	})
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
		var changed []string
		var events []AuditEvent
		overrides := map[string][]string{} // field: external users whose retained field changed
		var afters []*User
		var befores []*User
		for i := range users {
			before := &users[i]
			after := cloneUser(before)
			o := BatchOutcome{UserID: before.ID, PrimaryID: before.PrimaryID, Outcome: BatchUnchanged}
			for _, f := range fields {
				p := coreValue(after, f)
				if *p == set[f] {
					continue
				}
				if o.Changes == nil {
					o.Changes = map[string][2]string{}
				}
				o.Changes[f] = [2]string{*p, set[f]}
				*p = set[f]
			}
			if before.IsExternal() {
				for _, fe := range externalCoreRule(before, after) {
					o.Reasons = append(o.Reasons, fe)
				}
			}
			switch {
			case len(o.Reasons) > 0:
				o.Outcome = BatchRefused
			case len(o.Changes) > 0:
				o.Outcome = BatchChanged
				changed = append(changed, before.ID)
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
		if dry || len(changed) == 0 {
			return nil
		}
		now := s.clock()
		cols := map[string]any{"version": gorm.Expr("version + 1"), "updated_at": now}
		for _, f := range fields {
			col := f
			cols[col] = set[f]
		}
		if err := tx.Model(&User{}).Where("institution = ? AND id IN ?", inst, changed).Updates(cols).Error; err != nil {
			return err
		}
		by := actorOf(ctx).ID
		var rows []FieldOverride
		for _, f := range slices.Sorted(func(yield func(string) bool) {
			for k := range overrides {
				if !yield(k) {
					return
				}
			}
		}) {
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
