package patron

import (
	"context"
	"errors"
	"slices"

	"github.com/patronkit/patronkit/fault"
)

// Segment kinds, as they appear in the staff routes that add and remove one
// segment at a time.
const (
	KindIdentifiers = "user_identifiers"
	KindAddresses   = "addresses"
	KindEmails      = "emails"
	KindPhones      = "phones"
	KindNotes       = "user_notes"
	KindBlocks      = "user_blocks"
	KindStatistics  = "user_statistics"
	KindProxyFor    = "proxy_for_users"
)

// SegmentKinds lists every kind of segment.
var SegmentKinds = []string{KindIdentifiers, KindAddresses, KindEmails, KindPhones, KindNotes, KindBlocks, KindStatistics, KindProxyFor}

// AddIdentifier adds an Internal identifier to a user.
func (s *Service) AddIdentifier(ctx context.Context, inst, primaryID string, x Identifier) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Identifiers = append(u.Identifiers, x); return nil })
}

// AddAddress adds an Internal address to a user.
func (s *Service) AddAddress(ctx context.Context, inst, primaryID string, x Address) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Addresses = append(u.Addresses, x); return nil })
}

// AddEmail adds an Internal email address to a user.
func (s *Service) AddEmail(ctx context.Context, inst, primaryID string, x Email) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Emails = append(u.Emails, x); return nil })
}

// AddPhone adds an Internal phone number to a user.
func (s *Service) AddPhone(ctx context.Context, inst, primaryID string, x Phone) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Phones = append(u.Phones, x); return nil })
}

// AddNote adds a library note to a user.
func (s *Service) AddNote(ctx context.Context, inst, primaryID string, x Note) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Notes = append(u.Notes, x); return nil })
}

// AddBlock adds a manual block to a user.
func (s *Service) AddBlock(ctx context.Context, inst, primaryID string, x Block) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Blocks = append(u.Blocks, x); return nil })
}

// AddStatistic adds an Internal statistical category to a user.
func (s *Service) AddStatistic(ctx context.Context, inst, primaryID string, x Statistic) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.Statistics = append(u.Statistics, x); return nil })
}

// AddProxyFor lets a user borrow on behalf of another (the sponsor).
func (s *Service) AddProxyFor(ctx context.Context, inst, primaryID string, x ProxyFor) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error { u.ProxyFor = append(u.ProxyFor, x); return nil })
}

// RemoveSegment removes one segment of a kind (see SegmentKinds) by id.
// External segments of an external user belong to the SIS and are refused.
func (s *Service) RemoveSegment(ctx context.Context, inst, primaryID, kind, id string) (*User, error) {
	return s.edit(ctx, inst, primaryID, func(u *User) error {
		var found *Segment
		removed := func(seg Segment) bool {
			if seg.ID == id {
				found = &seg
				return true
			}
			return false
		}
		switch kind {
		case KindIdentifiers:
			u.Identifiers = slices.DeleteFunc(u.Identifiers, func(x Identifier) bool { return removed(x.Segment) })
		case KindAddresses:
			u.Addresses = slices.DeleteFunc(u.Addresses, func(x Address) bool { return removed(x.Segment) })
		case KindEmails:
			u.Emails = slices.DeleteFunc(u.Emails, func(x Email) bool { return removed(x.Segment) })
		case KindPhones:
			u.Phones = slices.DeleteFunc(u.Phones, func(x Phone) bool { return removed(x.Segment) })
		case KindNotes:
			u.Notes = slices.DeleteFunc(u.Notes, func(x Note) bool { return removed(x.Segment) })
		case KindBlocks:
			u.Blocks = slices.DeleteFunc(u.Blocks, func(x Block) bool { return removed(x.Segment) })
		case KindStatistics:
			u.Statistics = slices.DeleteFunc(u.Statistics, func(x Statistic) bool { return removed(x.Segment) })
		case KindProxyFor:
			u.ProxyFor = slices.DeleteFunc(u.ProxyFor, func(x ProxyFor) bool { return removed(x.Segment) })
		default:
			return notFound("no segment kind %q", kind)
		}
		if found == nil {
			return notFound("user has no %s entry %q", kind, id)
		}
		if u.IsExternal() && found.IsExternal() {
			return &fault.Error{Kind: fault.Refused, Detail: "an External entry belongs to the SIS", Reasons: []string{"the " + kind + " entry " + id + " came from the SIS and is replaced by each synchronize; it cannot be removed by hand"}}
		}
		return nil
	})
}

// edit applies a change to the current record and saves it through Replace,
// so that every rule of a whole-record update holds for one-segment edits.
// The caller names no version: when another change lands between the read
// and the write, the edit is tried again on the newer record.
func (s *Service) edit(ctx context.Context, inst, primaryID string, change func(u *User) error) (*User, error) {
	for attempt := 1; ; attempt++ {
		cur, err := loadUser(s.conn(ctx), inst, primaryID)
		if err != nil {
			return nil, s.translate(err)
		}
		if err := change(cur); err != nil {
			return nil, err
		}
		out, err := s.Replace(ctx, inst, primaryID, cur.Version, cur)
		if errors.Is(err, fault.ErrStale) && attempt < 3 {
			continue
		}
		return out, err
	}
}
