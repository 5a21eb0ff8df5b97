package circulation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// RequestChange is what UpdateRequest changes of a waiting request; a nil
// field stays as it is.
type RequestChange struct {
	// PickupLibrary is the code of the library to pick the item up at,
	// under PlaceRequest's rule: the library that owns the item (or an
	// item of the title) unless the terms of use let the patron's group
	// choose any (PickupAnyLibrary). A request delivered to an address
	// has no pickup library to change.
	PickupLibrary *string
	// NotNeededAfter (YYYY-MM-DD, not in the past; "" for none): the
	// request expires if it is still waiting after that day.
	NotNeededAfter *string
}

// UpdateRequest changes the waiting request id of the patron primaryID as
// ch says, recording the change on the audit trail ("requests": the
// request's id and each field's old and new values), and returns it. A
// value the rules above refuse is Invalid (the field named); a request no
// longer waiting (on the hold shelf, or closed) is Refused; an unknown one
// NotFound. Nothing changes when ch changes nothing.
func (s *Service) UpdateRequest(ctx context.Context, inst, primaryID, id string, ch RequestChange) (*Request, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	r, pid, err := s.request(ctx, inst, primaryID, id)
	if err != nil {
		return nil, err
	}
	c := &checker{}
	changed := map[string]any{}
	updates := map[string]any{}
	pickup, notAfter := r.PickupLibrary, r.NotNeededAfter
	if ch.NotNeededAfter != nil {
		notAfter = strings.TrimSpace(*ch.NotNeededAfter)
		c.date("not_needed_after", notAfter, false)
		if notAfter != "" && notAfter < s.today() {
			c.add("not_needed_after", "out_of_range", "has passed")
		}
	}
	if ch.PickupLibrary != nil {
		pickup = strings.TrimSpace(*ch.PickupLibrary)
		switch {
		case r.DeliveryAddress != "":
			c.add("pickup_library", "bad_format", "the request is delivered to an address: it has no pickup library")
		case pickup == "":
			c.add("pickup_library", "required", "is required")
		default:
			c.code("pickup_library", pickup, true, 64)
		}
	}
	if err := c.err("request"); err != nil {
		return nil, err
	}
	if r.Status != RequestWaiting {
		return nil, refused(fmt.Sprintf("request %s cannot be changed", r.ID), cause(ReasonRequestNotWaiting, "request_id", r.ID, "status", r.Status))
	}
	db := s.conn(ctx)
	if ch.PickupLibrary != nil && !strings.EqualFold(pickup, r.PickupLibrary) {
		lib, err := loadLibrary(db, inst, pickup)
		if errors.Is(err, fault.ErrNotFound) {
			c.add("pickup_library", "unknown_value", "no library %q", pickup)
		} else if err != nil {
			return nil, err
		} else {
			pickup = lib.Code
			if err := s.pickupAllowed(ctx, ps, inst, r, lib.Code, c); err != nil {
				return nil, err
			}
		}
		if err := c.err("request"); err != nil {
			return nil, err
		}
	}
	if pickup != r.PickupLibrary {
		changed["pickup_library"], updates["pickup_library"] = change(r.PickupLibrary, pickup), pickup
	}
	if notAfter != r.NotNeededAfter {
		changed["not_needed_after"], updates["not_needed_after"] = change(r.NotNeededAfter, notAfter), notAfter
	}
	if len(updates) == 0 {
		return r, nil
	}
	now := s.loanClock()
	updates["version"], updates["updated_at"] = r.Version+1, now
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		res := tx.Model(&Request{}).Where("id = ? AND version = ? AND status = ?", r.ID, r.Version, RequestWaiting).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("request %s changed meanwhile; read it again", r.ID)
		}
		return s.auditRequestChange(ctx, r, changed)
	})
	if err != nil {
		return nil, s.translate(err)
	}
	r.PickupLibrary, r.NotNeededAfter, r.Version, r.UpdatedAt = pickup, notAfter, r.Version+1, now
	r.PrimaryID = pid
	return r, nil
}

// pickupAllowed adds to c why library lib may not be the pickup library
// of request r: not a library owning the item (or an item of the title)
// while the terms of use of the patron's group for it do not allow any.
func (s *Service) pickupAllowed(ctx context.Context, ps *patron.Service, inst string, r *Request, lib string, c *checker) error {
	db := s.conn(ctx)
	var items []Item
	q := db.Where("institution = ?", inst)
	if r.ItemID != "" && r.Level == RequestItem {
		q = q.Where("id = ?", r.ItemID)
	} else {
		q = q.Where("title_id = ?", r.TitleID)
	}
	if err := q.Order("barcode_key").Find(&items).Error; err != nil {
		return err
	}
	for _, it := range items {
		if strings.EqualFold(it.Library, lib) {
			return nil
		}
	}
	user, err := ps.GetByID(ctx, inst, r.UserID, patron.KindBlocks)
	if err != nil {
		return err
	}
	now := s.loanClock()
	for _, it := range items {
		t, _, err := s.TermsFor(ctx, inst, user, &it, now)
		if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
			continue
		} else if err != nil {
			return err
		}
		if t.PickupAnyLibrary {
			return nil
		}
		c.add("pickup_library", "unknown_value", "user group %q may pick up only at the library that owns the item (%s)", user.UserGroup, it.Library)
		return nil
	}
	c.add("pickup_library", "unknown_value", "no terms of use let user group %q pick the item up at %s", user.UserGroup, lib)
	return nil
}
