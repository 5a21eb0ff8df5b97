package circulation

import (
	"context"

	"gorm.io/gorm"
)

// competitors selects the waiting requests that an item can serve: those
// for the item and those for its title.
func competitors(q *gorm.DB, inst string, it *Item) *gorm.DB {
	q = q.Where("institution = ? AND status = ?", inst, RequestWaiting)
	if it.TitleID == "" {
		return q.Where("item_id = ?", it.ID)
	}
	return q.Where("item_id = ? OR (level = ? AND title_id = ?)", it.ID, RequestTitle, it.TitleID)
}

// place computes a waiting request's place in its queue.
func (s *Service) place(db *gorm.DB, r *Request) (int, error) {
	q := db.Model(&Request{}).Where("institution = ? AND status = ?", r.Institution, RequestWaiting).
		Where("placed_at < ? OR (placed_at = ? AND id < ?)", r.PlacedAt, r.PlacedAt, r.ID)
	switch {
	case r.Level == RequestTitle:
		q = q.Where("title_id = ?", r.TitleID)
	case r.TitleID != "":
		q = q.Where("item_id = ? OR (level = ? AND title_id = ?)", r.ItemID, RequestTitle, r.TitleID)
	default:
		q = q.Where("item_id = ?", r.ItemID)
	}
	var n int64
	err := q.Count(&n).Error
	return int(n) + 1, err
}

// QueuePlace is what a patron sees of an item's queue before requesting
// the item: whether a request is needed at all, how many requests wait,
// and their own place, or the place a request placed now would get.
type QueuePlace struct {
	// Barcode names the item, as the inventory spells it.
	Barcode string `json:"barcode"`
	// ItemStatus is the item's status (one of the Status constants).
	ItemStatus string `json:"item_status"`
	// Available says the item is on the shelf and nobody waits for it: it
	// may be borrowed at the desk, no request is needed.
	Available bool `json:"available"`
	// RequestNeeded says the patron must place a request to get the item:
	// it is not available, and they have no active request for it (or for
	// its title) and do not have it on loan. Whether the terms of use and
	// the patron's blocks allow one is for the request to tell.
	RequestNeeded bool `json:"request_needed"`
	// QueueLength counts the requests waiting for the item or its title,
	// the patron's own included.
	QueueLength int `json:"queue_length"`
	// RequestsAhead counts the waiting requests before the patron's: before
	// their waiting request, or before a request placed now when one is
	// needed; 0 otherwise.
	RequestsAhead int `json:"requests_ahead"`
	// Place is the patron's place in the queue (1: next): their waiting
	// request's place, or the place a request placed now would get when one
	// is needed; 0 when none is needed (the item is available, on the hold
	// shelf for them, or on loan to them).
	Place int `json:"place_in_queue"`
	// YourRequest is the patron's active request for the item or its
	// title: waiting (with its place) or on the hold shelf.
	YourRequest *Request `json:"your_request,omitempty"`
	// OnLoanToYou says the patron has the item on loan.
	OnLoanToYou bool `json:"on_loan_to_you"`
}

// Queue tells what anyone would see of the queue of the item with barcode:
// whether it is available, how many wait, and the place a request placed
// now would get. QueueFor tells it for a patron.
func (s *Service) Queue(ctx context.Context, inst, barcode string) (*QueuePlace, error) {
	return s.QueueFor(ctx, inst, "", barcode)
}

// QueueFor tells the patron primaryID what they would see of the queue of
// the item with barcode before requesting it (see QueuePlace): no request
// needed when the item is on the shelf and nobody waits, their own place
// when they already have a request for the item or its title, the place a
// request placed now would get otherwise. An unknown patron or item is
// NotFound. What it tells of the patron (their request, their loan) is on
// the audit trail ("requests", details: the item's barcode) unless the
// patron asks for themself.
func (s *Service) QueueFor(ctx context.Context, inst, primaryID, barcode string) (*QueuePlace, error) {
	uid, pid := "", ""
	if primaryID != "" {
		var err error
		if uid, pid, err = s.userOf(ctx, inst, primaryID); err != nil {
			return nil, err
		}
	}
	it, err := s.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	var n int64
	if err := competitors(db.Model(&Request{}), inst, it).Count(&n).Error; err != nil {
		return nil, err
	}
	q := &QueuePlace{Barcode: it.Barcode, ItemStatus: it.Status, QueueLength: int(n), Available: it.Status == StatusAvailable && n == 0}
	if uid != "" {
		// The request PlaceRequest would name when it refuses another.
		var mine []Request
		mq := db.Where("institution = ? AND user_id = ? AND status IN ?", inst, uid, activeRequests)
		if it.TitleID != "" {
			mq = mq.Where("item_id = ? OR title_id = ?", it.ID, it.TitleID)
		} else {
			mq = mq.Where("item_id = ?", it.ID)
		}
		if err := mq.Order("placed_at, id").Limit(1).Find(&mine).Error; err != nil {
			return nil, err
		}
		if len(mine) > 0 {
			rs, err := s.finishRequests(db, mine)
			if err != nil {
				return nil, err
			}
			q.YourRequest = &rs[0]
		}
		var loans int64
		if err := db.Model(&Loan{}).Where("institution = ? AND user_id = ? AND status = ? AND item_id = ?", inst, uid, LoanOpen, it.ID).
			Count(&loans).Error; err != nil {
			return nil, err
		}
		q.OnLoanToYou = loans > 0
		if err := s.auditRead(ctx, inst, pid, "requests", map[string]any{"item_barcode": it.Barcode}); err != nil {
			return nil, err
		}
	}
	switch {
	case q.YourRequest != nil:
		q.Place = q.YourRequest.Place // 0 on the hold shelf
		q.RequestsAhead = max(q.Place-1, 0)
	case q.OnLoanToYou, q.Available:
	default:
		q.RequestNeeded = true
		q.RequestsAhead, q.Place = int(n), int(n)+1
	}
	return q, nil
}

// ItemRequests returns the active requests the item with barcode may
// serve (those for it and for its title), in queue order: the one it is
// held for first, then the waiting ones with their places. The read is on
// the audit trail: one "requests" event per patron the requests name
// (details: the item's barcode and their requests' ids), but the actor's
// own.
func (s *Service) ItemRequests(ctx context.Context, inst, barcode string) ([]Request, error) {
	it, err := s.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	out := []Request{}
	if err := db.Where("institution = ? AND status = ? AND item_id = ?", inst, RequestOnHoldShelf, it.ID).Find(&out).Error; err != nil {
		return nil, err
	}
	var waiting []Request
	if err := competitors(db, inst, it).Order("placed_at, id").Find(&waiting).Error; err != nil {
		return nil, err
	}
	out, err = s.finishRequests(db, append(out, waiting...))
	if err != nil {
		return nil, err
	}
	if err := s.auditRequests(ctx, inst, out, map[string]any{"item_barcode": it.Barcode}); err != nil {
		return nil, err
	}
	return out, nil
}

// othersWaiting tells whether patrons other than userID wait for item.
func (s *Service) othersWaiting(db *gorm.DB, inst string, it *Item, userID string) (bool, error) {
	var n int64
	err := competitors(db.Model(&Request{}), inst, it).Where("user_id <> ?", userID).Count(&n).Error
	return n > 0, err
}
