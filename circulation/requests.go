package circulation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Request levels.
const (
	// RequestItem asks for one item.
	RequestItem = "item"
	// RequestTitle asks for any item of a title.
	RequestTitle = "title"
)

// Request statuses.
const (
	// RequestWaiting: in the queue.
	RequestWaiting = "waiting"
	// RequestOnHoldShelf: an item waits on the hold shelf for the patron
	// (or is on its way to them, for a personal delivery) until HoldUntil.
	RequestOnHoldShelf = "on_hold_shelf"
	// RequestFulfilled: the patron borrowed the item.
	RequestFulfilled = "fulfilled"
	// RequestCancelled: cancelled by the patron or by staff.
	RequestCancelled = "cancelled"
	// RequestExpired: not needed any more (its not-needed-after date
	// passed) or not picked up in time.
	RequestExpired = "expired"
)

// activeRequests are the statuses of requests still to be served.
var activeRequests = []string{RequestWaiting, RequestOnHoldShelf}

// defaultHoldShelfDays is how long an item waits on the hold shelf when
// the terms of use do not say.
const defaultHoldShelfDays = 7

// Request is a patron's hold request on an item, or on a title (any item
// of it). Requests wait in a queue in the order they were placed; when an
// item they can take comes back (or is on the shelf when the request is
// placed) it goes on the hold shelf for the first of them, until
// HoldUntil; the patron's check-out of it fulfils the request.
//
// # Queues
//
// An item's queue holds the waiting requests for the item and those for
// its title; a title's queue holds every waiting request naming the title
// or one of its items. Place is a request's place in its queue (1: next).
// The assignments of items to requests are conditional updates in the
// transaction that frees the item (a return, a cancelled or expired hold),
// so an item is held for one request at a time.
type Request struct {
	// ID (a UUIDv7) identifies the request.
	ID          string `json:"request_id" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`
	// UserID is the patron's internal id, PrimaryID their primary_id when
	// the request was placed.
	UserID    string `json:"-" gorm:"size:36;not null"`
	PrimaryID string `json:"primary_id" gorm:"size:255;not null"`
	// Level is RequestItem or RequestTitle.
	Level string `json:"request_level" gorm:"size:8;not null"`
	// ItemID and Barcode name the item requested, or for a title request
	// the item held for it once there is one.
	ItemID  string `json:"-" gorm:"size:36"`
	Barcode string `json:"barcode,omitempty" gorm:"size:255"`
	// TitleID and Title name the title.
	TitleID string `json:"title_id,omitempty" gorm:"size:64"`
	Title   string `json:"title" gorm:"size:1000"`
	// PickupLibrary is the library where the patron picks the item up;
	// DeliveryAddress, instead, the address it is delivered to.
	PickupLibrary   string `json:"pickup_library,omitempty" gorm:"size:64"`
	DeliveryAddress string `json:"delivery_address,omitempty" gorm:"size:1000"`
	// NotNeededAfter (YYYY-MM-DD): a request still waiting after that day
	// expires.
	NotNeededAfter string `json:"not_needed_after,omitempty" gorm:"size:10"`
	// HoldShelfDays is how long the item waits on the hold shelf, from
	// the terms of use when the request was placed.
	HoldShelfDays int `json:"-" gorm:"not null"`
	// Status is one of the Request statuses.
	Status string `json:"request_status" gorm:"size:16;not null"`
	// HoldUntil is the last moment to pick the item up, while it is on
	// the hold shelf.
	HoldUntil *time.Time `json:"hold_shelf_expiry,omitempty"`
	// FeeID names the personal delivery fee charged, if any.
	FeeID string `json:"fee_id,omitempty" gorm:"size:36"`
	// Place is the request's place in its queue while it waits (1:
	// next); computed when read.
	Place int `json:"place_in_queue,omitempty" gorm:"-"`
	// PlacedAt, ClosedAt (once fulfilled, cancelled or expired) in UTC;
	// CloseReason and ClosedBy say why and who (empty: the system).
	PlacedAt    time.Time  `json:"request_date"`
	ClosedAt    *time.Time `json:"closed_date,omitempty"`
	CloseReason string     `json:"close_reason,omitempty" gorm:"size:1000"`
	ClosedBy    string     `json:"closed_by,omitempty" gorm:"size:255"`
	// Version counts the changes of the request.
	Version   int       `json:"version" gorm:"not null"`
	UpdatedAt time.Time `json:"updated_date"`
}

// TableName places requests in the pk_ namespace of the host's database.
func (Request) TableName() string { return "pk_circ_requests" }

// NewRequest is what a patron asks for with PlaceRequest.
type NewRequest struct {
	// Barcode names the item requested; TitleID, instead, a title (any
	// of its items). One of the two.
	Barcode string `json:"barcode,omitempty"`
	TitleID string `json:"title_id,omitempty"`
	// PickupLibrary is the code of the library to pick the item up at;
	// default: the library that owns it. The terms of use say whether
	// another library may be chosen (PickupAnyLibrary).
	PickupLibrary string `json:"pickup_library,omitempty"`
	// DeliveryAddressID names one of the patron's addresses (its id) to
	// deliver the item to, instead of a pickup library, where the terms
	// of use offer personal delivery; its fee is charged when the request
	// is placed.
	DeliveryAddressID string `json:"delivery_address_id,omitempty"`
	// NotNeededAfter (YYYY-MM-DD, not in the past): the request expires
	// if it is still waiting after that day.
	NotNeededAfter string `json:"not_needed_after,omitempty"`
}

// FeeDelivery is the fee of a personal delivery.
const FeeDelivery = "delivery"

// PlaceRequest places a request of the patron primaryID and returns it,
// waiting in its queue, or on the hold shelf at once when an item it can
// take is on the shelf. It is Invalid for a request that names neither or
// both of an item and a title, a pickup library the terms of use do not
// allow the patron's group (undergraduates may be limited to the library
// that owns the item), an address that is not the patron's or a personal
// delivery the terms do not offer, or a not-needed-after date in the past.
// It is Refused, with every reason, when a block stops the patron's
// requests, the terms of use allow no request of the item (or of any item
// of the title), the patron already has an active request for it or has
// it on loan. Unknown patrons, items and titles are NotFound.
func (s *Service) PlaceRequest(ctx context.Context, inst, primaryID string, in NewRequest) (*Request, error) {
	ps, err := s.patronService()
	if err != nil {
		return nil, err
	}
	user, err := ps.GetSegments(ctx, inst, primaryID, patron.KindBlocks, patron.KindAddresses)
	if err != nil {
		return nil, err
	}
	trim(&in.Barcode, &in.TitleID, &in.PickupLibrary, &in.DeliveryAddressID, &in.NotNeededAfter)
	c := &checker{}
	c.record(in)
	if (in.Barcode == "") == (in.TitleID == "") {
		c.add("barcode", "required", "give a barcode (one item) or a title_id (any item of the title), one of the two")
	}
	c.date("not_needed_after", in.NotNeededAfter, false)
	if in.NotNeededAfter != "" && in.NotNeededAfter < s.today() {
		c.add("not_needed_after", "out_of_range", "has passed")
	}
	if in.PickupLibrary != "" && in.DeliveryAddressID != "" {
		c.add("delivery_address_id", "bad_format", "give a pickup library or a delivery address, not both")
	}
	if err := c.err("request"); err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	var items []Item
	level, target := RequestItem, in.Barcode
	if in.Barcode != "" {
		it, err := s.Item(ctx, inst, in.Barcode)
		if err != nil {
			return nil, err
		}
		items = []Item{*it}
	} else {
		level, target = RequestTitle, "title "+in.TitleID
		if err := db.Where("institution = ? AND title_id = ?", inst, in.TitleID).Order("barcode_key").Find(&items).Error; err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, notFound("no items of title %s", in.TitleID)
		}
	}
	titleID := items[0].TitleID

	bs, err := s.blocks(ctx, inst, user)
	if err != nil {
		return nil, err
	}
	blocked, reasons := stopping(bs, ActionRequest)
	now := s.loanClock()
	var allowed []Item
	terms := map[string]Terms{}
	var why []fault.Reason
	for _, it := range items {
		if it.Status == StatusLost || it.Status == StatusMissing {
			why = append(why, cause(ReasonItemNotAvailable, "barcode", it.Barcode, "status", it.Status))
			continue
		}
		t, _, err := s.TermsFor(ctx, inst, user, &it, now)
		if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
			why = append(why, pe.Why()...)
			continue
		} else if err != nil {
			return nil, err
		}
		if !t.RequestsAllowed {
			why = append(why, cause(ReasonRequestsNotAllowed, "primary_id", user.PrimaryID, "barcode", it.Barcode))
			continue
		}
		allowed = append(allowed, it)
		terms[it.ID] = t
	}
	if len(allowed) == 0 {
		reasons = append(reasons, why...)
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	var mine []Request
	q := db.Where("institution = ? AND user_id = ? AND status IN ?", inst, user.ID, activeRequests)
	if titleID != "" {
		q = q.Where("item_id IN ? OR title_id = ?", ids, titleID)
	} else {
		q = q.Where("item_id IN ?", ids)
	}
	if err := q.Find(&mine).Error; err != nil {
		return nil, err
	}
	if len(mine) > 0 {
		target := []string{"barcode", mine[0].Barcode}
		if mine[0].Level == RequestTitle {
			target = []string{"title_id", mine[0].TitleID}
		}
		reasons = append(reasons, cause(ReasonAlreadyRequested, append([]string{"primary_id", user.PrimaryID}, target...)...))
	}
	var onLoan []Loan
	if err := db.Select("item_barcode").Where("institution = ? AND user_id = ? AND status = ? AND item_id IN ?", inst, user.ID, LoanOpen, ids).
		Find(&onLoan).Error; err != nil {
		return nil, err
	}
	if len(onLoan) > 0 {
		reasons = append(reasons, cause(ReasonAlreadyOnLoan, "primary_id", user.PrimaryID, "barcode", onLoan[0].ItemBarcode))
	}
	if len(reasons) > 0 {
		return nil, refusal(fmt.Sprintf("%s cannot request %s", user.PrimaryID, target), reasons, blocked)
	}

	first := terms[allowed[0].ID]
	req := &Request{ID: keys.NewID(), Institution: inst, UserID: user.ID, PrimaryID: user.PrimaryID, Level: level, TitleID: titleID,
		Title: allowed[0].Title, NotNeededAfter: in.NotNeededAfter, HoldShelfDays: first.HoldShelfDays, Status: RequestWaiting,
		PlacedAt: now, Version: 1, UpdatedAt: now}
	if req.HoldShelfDays <= 0 {
		req.HoldShelfDays = defaultHoldShelfDays
	}
	if level == RequestItem {
		req.ItemID, req.Barcode = allowed[0].ID, allowed[0].Barcode
	}
	if in.DeliveryAddressID != "" {
		if !first.PersonalDelivery {
			c.add("delivery_address_id", "unknown_value", "personal delivery is not offered to user group %q", user.UserGroup)
		}
		i := slices.IndexFunc(user.Addresses, func(a patron.Address) bool { return a.ID == in.DeliveryAddressID })
		if i < 0 {
			c.add("delivery_address_id", "unknown_value", "is not one of %s's addresses", user.PrimaryID)
		} else {
			req.DeliveryAddress = formatAddress(&user.Addresses[i])
		}
	} else {
		req.PickupLibrary = in.PickupLibrary
		if req.PickupLibrary == "" {
			req.PickupLibrary = allowed[0].Library
		}
		lib, err := loadLibrary(db, inst, req.PickupLibrary)
		if errors.Is(err, fault.ErrNotFound) {
			c.add("pickup_library", "unknown_value", "no library %q", req.PickupLibrary)
		} else if err != nil {
			return nil, err
		} else {
			req.PickupLibrary = lib.Code
			owning := slices.IndexFunc(allowed, func(it Item) bool { return strings.EqualFold(it.Library, lib.Code) }) >= 0
			if !owning && !first.PickupAnyLibrary {
				c.add("pickup_library", "unknown_value", "user group %q may pick up only at the library that owns the item (%s)", user.UserGroup, allowed[0].Library)
			}
		}
	}
	if err := c.err("request"); err != nil {
		return nil, err
	}
	a, _ := patron.ActorFrom(ctx)
	placed := *req
	err = s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := ps.LockUser(ctx, inst, user.ID); err != nil {
			return err
		}
		r := placed
		if r.DeliveryAddress != "" && first.DeliveryFee > 0 {
			f := &Fee{ID: keys.NewID(), Institution: inst, UserID: user.ID, PrimaryID: user.PrimaryID, Type: FeeDelivery, Barcode: r.Barcode,
				Description: "Personal delivery of " + r.Title, Amount: first.DeliveryFee, Currency: first.Currency, Status: FeeOpen,
				CreatedBy: a.ID, CreatedAt: now, UpdatedAt: now, Version: 1}
			if err := s.charge(ctx, tx, f); err != nil {
				return err
			}
			r.FeeID = f.ID
		}
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		if err := s.auditPlaced(ctx, &r); err != nil {
			return err
		}
		// An item on the shelf goes on the hold shelf at once, unless
		// someone was waiting for it first.
		for _, it := range allowed {
			if it.Status != StatusAvailable {
				continue
			}
			held, err := s.holdForNext(ctx, tx, inst, &it, StatusAvailable, now)
			if err != nil {
				return err
			}
			if held != nil {
				if held.ID == r.ID {
					r = *held
				}
				break
			}
		}
		*req = r
		return nil
	})
	if err != nil {
		return nil, s.translate(err)
	}
	if req.Status == RequestWaiting {
		if req.Place, err = s.place(db, req); err != nil {
			return nil, err
		}
	}
	return finishRequest(req), nil
}

// auditPlaced records, within the request's transaction, that request r
// was placed: a creation of "requests" of its patron whose details are
// the request's id, its item's barcode or its title's id, its pickup
// library (or that it is delivered, by the address's id: never the
// address), its not-needed-after date, its status and its delivery fee's
// id.
func (s *Service) auditPlaced(ctx context.Context, r *Request) error {
	d := map[string]any{"request_id": r.ID, "status": r.Status}
	if r.Barcode != "" {
		d["item_barcode"] = r.Barcode
	}
	if r.Level == RequestTitle {
		d["title_id"] = r.TitleID
	}
	if r.PickupLibrary != "" {
		d["pickup_library"] = r.PickupLibrary
	}
	if r.DeliveryAddress != "" {
		d["delivery"] = true
	}
	if r.NotNeededAfter != "" {
		d["not_needed_after"] = r.NotNeededAfter
	}
	if r.FeeID != "" {
		d["fee_id"] = r.FeeID
	}
	return s.auditChange(ctx, r.Institution, patron.AuditCreate, r.PrimaryID, "requests", d)
}

// auditRequestChange records, within the change's transaction, a change
// of request r (as it was before it) of its patron: an update of
// "requests" whose details are the request's id, its item's barcode, and
// changed, the fields changed ({"old", "new"}), with more plain values
// (a reason).
func (s *Service) auditRequestChange(ctx context.Context, r *Request, changed map[string]any) error {
	if s.patrons == nil {
		return nil
	}
	pid, err := s.subject(ctx, r.Institution, r.UserID, r.PrimaryID)
	if err != nil {
		return err
	}
	d := map[string]any{"request_id": r.ID}
	if r.Barcode != "" {
		d["item_barcode"] = r.Barcode
	}
	maps.Copy(d, changed)
	return s.auditChange(ctx, r.Institution, patron.AuditUpdate, pid, "requests", d)
}

// auditRequests records a read of the requests rs, which may name
// several patrons: one "requests" event per patron, its details d and
// their requests' ids (request_id for one, request_ids for several).
func (s *Service) auditRequests(ctx context.Context, inst string, rs []Request, d map[string]any) error {
	return auditRows(ctx, s, inst, "requests", "request", rs, func(r Request) (string, string, string) { return r.UserID, r.PrimaryID, r.ID }, d)
}

// formatAddress writes an address on one line.
func formatAddress(a *patron.Address) string {
	var parts []string
	for _, p := range []string{a.Line1, a.Line2, a.Line3, a.Line4, a.Line5, strings.TrimSpace(a.PostalCode + " " + a.City), a.StateProvince, a.Country} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

func finishRequest(r *Request) *Request {
	r.PlacedAt, r.UpdatedAt = r.PlacedAt.UTC(), r.UpdatedAt.UTC()
	for _, p := range []**time.Time{&r.HoldUntil, &r.ClosedAt} {
		if *p != nil {
			u := (**p).UTC()
			*p = &u
		}
	}
	return r
}

// finishRequests sets the times in UTC and the places of the waiting ones.
func (s *Service) finishRequests(db *gorm.DB, rs []Request) ([]Request, error) {
	for i := range rs {
		finishRequest(&rs[i])
		if rs[i].Status == RequestWaiting {
			p, err := s.place(db, &rs[i])
			if err != nil {
				return nil, err
			}
			rs[i].Place = p
		}
	}
	return rs, nil
}

// Requests returns the requests of the patron primaryID: the active ones
// (waiting or on the hold shelf) in the order they were placed, each
// waiting one with its place in its queue; or (active false) all of them,
// the latest first. The read is on the audit trail ("requests") unless
// the patron reads their own.
func (s *Service) Requests(ctx context.Context, inst, primaryID string, active bool) ([]Request, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	db := s.conn(ctx)
	q := db.Where("institution = ? AND user_id = ?", inst, uid)
	if active {
		q = q.Where("status IN ?", activeRequests).Order("placed_at, id")
	} else {
		q = q.Order("placed_at DESC, id DESC")
	}
	out := []Request{}
	if err := q.Find(&out).Error; err != nil {
		return nil, err
	}
	out, err = s.finishRequests(db, out)
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "requests", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// Request returns the request id of the patron primaryID. The read is on
// the audit trail ("requests", details: the request's id) unless the
// patron reads their own.
func (s *Service) Request(ctx context.Context, inst, primaryID, id string) (*Request, error) {
	r, pid, err := s.request(ctx, inst, primaryID, id)
	if err != nil {
		return nil, err
	}
	if err := s.auditRead(ctx, inst, pid, "requests", map[string]any{"request_id": r.ID}); err != nil {
		return nil, err
	}
	return r, nil
}

// request is Request unrecorded, with the patron's primary_id as their
// record spells it.
func (s *Service) request(ctx context.Context, inst, primaryID, id string) (*Request, string, error) {
	uid, pid, err := s.userOf(ctx, inst, primaryID)
	if err != nil {
		return nil, "", err
	}
	db := s.conn(ctx)
	var r Request
	err = db.Where("institution = ? AND user_id = ? AND id = ?", inst, uid, strings.TrimSpace(id)).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, "", notFound("no request %s", id)
	}
	if err != nil {
		return nil, "", err
	}
	rs, err := s.finishRequests(db, []Request{r})
	if err != nil {
		return nil, "", err
	}
	return &rs[0], pid, nil
}

// RequestLibraries returns the codes of the libraries a request concerns:
// the library it is picked up at (none for a personal delivery), and the
// libraries of the items that may serve it: the item requested or held
// for it, or, while a title request waits for one, every library that owns
// an item of the title.
//
// Staff act on a request (place it for a patron, cancel it) with a role
// held in one of them, as they lend only the items of the libraries their
// roles hold in: the owning library sends its item and may call the
// request off (the item is lost, withdrawn), and the pickup library keeps
// the hold shelf and the patron comes to its desk. A desk of any other
// library has no part in the request.
func (s *Service) RequestLibraries(ctx context.Context, inst string, r *Request) ([]string, error) {
	return s.requestLibraries(ctx, inst, r.PickupLibrary, r.Barcode, r.TitleID, false)
}

// NewRequestLibraries is RequestLibraries for a request about to be
// placed: its pickup library (the owning library's when none is given),
// and the library of the item, or of every item of the title, requested.
// An unknown item is NotFound; a request that names neither or both of an
// item and a title concerns no library (PlaceRequest refuses it).
func (s *Service) NewRequestLibraries(ctx context.Context, inst string, in NewRequest) ([]string, error) {
	barcode, titleID := strings.TrimSpace(in.Barcode), strings.TrimSpace(in.TitleID)
	if (barcode == "") == (titleID == "") {
		return nil, nil
	}
	return s.requestLibraries(ctx, inst, in.PickupLibrary, barcode, titleID, true)
}

func (s *Service) requestLibraries(ctx context.Context, inst, pickup, barcode, titleID string, placing bool) ([]string, error) {
	db := s.conn(ctx)
	var out []string
	add := func(codes ...string) {
		for _, c := range codes {
			if c != "" && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	if pickup = strings.TrimSpace(pickup); pickup != "" {
		var codes []string
		if err := db.Model(&Library{}).Where("institution = ? AND code_key = ?", inst, keys.Fold(pickup)).Pluck("code", &codes).Error; err != nil {
			return nil, err
		}
		if len(codes) > 0 {
			pickup = codes[0] // as the library spells it
		}
		add(pickup)
	}
	if barcode != "" {
		it, err := s.Item(ctx, inst, barcode)
		if err == nil {
			add(it.Library)
			return out, nil
		}
		if !errors.Is(err, fault.ErrNotFound) || placing {
			return nil, err
		}
	}
	if titleID != "" {
		var codes []string
		if err := db.Model(&Item{}).Where("institution = ? AND title_id = ?", inst, titleID).Distinct().Order("library").Pluck("library", &codes).Error; err != nil {
			return nil, err
		}
		add(codes...)
	}
	return out, nil
}

// CancelRequest cancels the active request id of the patron primaryID for
// reason (required), recording the actor of ctx, and returns it. An item
// held for it goes to the next in the queue or back on the shelf; what
// remains of its personal delivery fee is waived. A request that is no
// longer active is Refused; an unknown one NotFound.
func (s *Service) CancelRequest(ctx context.Context, inst, primaryID, id, reason string) (*Request, error) {
	r, _, err := s.request(ctx, inst, primaryID, id)
	if err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	c := &checker{}
	c.note("reason", reason, true, 1000)
	if err := c.err("cancellation"); err != nil {
		return nil, err
	}
	if !slices.Contains(activeRequests, r.Status) {
		return nil, refused(fmt.Sprintf("request %s cannot be cancelled", r.ID), cause(ReasonRequestNotActive, "request_id", r.ID, "status", r.Status))
	}
	a, _ := patron.ActorFrom(ctx)
	if err := s.retry(ctx, func(ctx context.Context, tx *gorm.DB) error {
		return s.closeRequest(ctx, tx, r, RequestCancelled, reason, a.ID)
	}); err != nil {
		return nil, s.translate(err)
	}
	return r, nil
}

// closeRequest closes an active request r (as read) as cancelled or
// expired within tx and updates r.
func (s *Service) closeRequest(ctx context.Context, tx *gorm.DB, r *Request, status, reason, by string) error {
	now := s.loanClock()
	res := tx.Model(&Request{}).Where("id = ? AND version = ? AND status = ?", r.ID, r.Version, r.Status).
		Updates(map[string]any{"status": status, "closed_at": now, "close_reason": reason, "closed_by": by,
			"version": r.Version + 1, "updated_at": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return stale("request %s changed meanwhile; read it again", r.ID)
	}
	if err := s.auditRequestChange(ctx, r, map[string]any{"status": change(r.Status, status), "reason": reason}); err != nil {
		return err
	}
	if r.Status == RequestOnHoldShelf && r.ItemID != "" {
		if err := s.release(ctx, tx, r.Institution, r.ItemID, now); err != nil {
			return err
		}
	}
	if r.FeeID != "" {
		var fees []Fee
		if err := tx.Where("institution = ? AND id = ? AND status = ?", r.Institution, r.FeeID, FeeOpen).Find(&fees).Error; err != nil {
			return err
		}
		if err := s.waiveRest(ctx, tx, fees, "request "+status, now); err != nil {
			return err
		}
	}
	r.Status, r.ClosedAt, r.CloseReason, r.ClosedBy, r.Version, r.UpdatedAt, r.Place = status, &now, reason, by, r.Version+1, now, 0
	return s.queueNotice(ctx, tx, r.Institution, r.UserID, NoticeRequestCancelled, "request_cancelled:"+r.ID,
		noticeData{Title: r.Title, Barcode: r.Barcode, Reason: reason}, "", nil)
}

// waiveRest waives what remains of fees (read within tx), as the system,
// each waiver on the audit trail as Waive puts it.
func (s *Service) waiveRest(ctx context.Context, tx *gorm.DB, fees []Fee, reason string, now time.Time) error {
	for _, f := range fees {
		rest := f.Remaining()
		res := tx.Model(&Fee{}).Where("id = ? AND version = ?", f.ID, f.Version).
			Updates(map[string]any{"waived": f.Waived + rest, "status": FeeClosed, "version": f.Version + 1, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return stale("fee %s changed meanwhile; try again", f.ID)
		}
		if err := tx.Create(&Transaction{ID: keys.NewID(), Institution: f.Institution, FeeID: f.ID, Kind: Waiver, Amount: rest,
			Reason: reason, At: now}).Error; err != nil {
			return err
		}
		if s.patrons == nil {
			continue
		}
		pid, err := s.subject(ctx, f.Institution, f.UserID, f.PrimaryID)
		if err != nil {
			return err
		}
		f.Waived, f.Status = f.Waived+rest, FeeClosed
		if err := s.auditTaken(ctx, tx, pid, &f, Waiver, rest, reason); err != nil {
			return err
		}
	}
	return nil
}

// ExpireRequests closes, as expired, the waiting requests whose
// not-needed-after date has passed and the requests whose item waited on
// the hold shelf past its time (the item goes to the next in the queue or
// back on the shelf), in every institution. It returns how many it
// closed. Several instances may run it at once. The kit's Start runs it
// periodically.
func (s *Service) ExpireRequests(ctx context.Context) (int, error) {
	now := s.loanClock()
	today := s.today()
	n := 0
	for _, sel := range []struct {
		where  string
		arg    any
		reason func(r *Request) string
	}{
		{"status = '" + RequestWaiting + "' AND not_needed_after <> '' AND not_needed_after < ?", today,
			func(r *Request) string { return "not needed after " + r.NotNeededAfter }},
		{"status = '" + RequestOnHoldShelf + "' AND hold_until < ?", now,
			func(r *Request) string {
				return "not picked up by " + r.HoldUntil.UTC().Format(time.RFC3339)
			}},
	} {
		for {
			var due []Request
			if err := s.conn(ctx).Where(sel.where, sel.arg).Order("id").Limit(200).Find(&due).Error; err != nil {
				return n, err
			}
			done := 0
			for i := range due {
				err := s.retry(withJobActor(ctx, due[i].Institution, "request-expiry"), func(ctx context.Context, tx *gorm.DB) error {
					return s.closeRequest(ctx, tx, &due[i], RequestExpired, sel.reason(&due[i]), "")
				})
				if pe, ok := fault.As(err); ok && pe.Kind == fault.Stale {
					continue // closed or changed by another instance
				}
				if err != nil {
					return n, err
				}
				n++
				done++
			}
			if len(due) < 200 || done == 0 {
				break
			}
		}
	}
	return n, nil
}
