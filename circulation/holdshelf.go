package circulation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// holdForNext puts item (whose status is from) on the hold shelf for the
// first waiting request it can serve, and returns that request; nil when
// none waits, or when the item's status is not from any more (another
// transaction took it first): the item is then left as it is.
func (s *Service) holdForNext(ctx context.Context, tx *gorm.DB, inst string, it *Item, from string, now time.Time) (*Request, error) {
	var next Request
	err := competitors(tx, inst, it).Order("placed_at, id").Take(&next).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The item first: its row lock orders the transactions that would
	// hold it.
	res := tx.Model(&Item{}).Where("id = ? AND status = ?", it.ID, from).
		Updates(map[string]any{"status": StatusOnHoldShelf, "version": gorm.Expr("version + 1"), "updated_at": now})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	until := now.AddDate(0, 0, next.HoldShelfDays)
	res = tx.Model(&Request{}).Where("id = ? AND version = ? AND status = ?", next.ID, next.Version, RequestWaiting).
		Updates(map[string]any{"status": RequestOnHoldShelf, "item_id": it.ID, "barcode": it.Barcode, "hold_until": until,
			"version": next.Version + 1, "updated_at": now})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, stale("request %s changed while an item was held for it; try again", next.ID)
	}
	if err := s.auditRequestChange(ctx, &next, map[string]any{"item_barcode": it.Barcode,
		"status": change(RequestWaiting, RequestOnHoldShelf), "hold_until": stamp(until)}); err != nil {
		return nil, err
	}
	next.Status, next.ItemID, next.Barcode, next.HoldUntil, next.Version, next.UpdatedAt = RequestOnHoldShelf, it.ID, it.Barcode, &until, next.Version+1, now
	where := next.PickupLibrary
	if where == "" {
		where = "your address"
	} else {
		where = libraryName(tx, inst, where)
	}
	if err := s.queueNotice(ctx, tx, inst, next.UserID, NoticeOnHoldShelf, fmt.Sprintf("on_hold_shelf:%s:%s", next.ID, it.ID),
		noticeData{Title: it.Title, Barcode: it.Barcode, Library: where, HoldUntil: formatTime(until)}, "", nil); err != nil {
		return nil, err
	}
	return &next, nil
}

// release frees the item held for a request that was cancelled or
// expired: it goes to the next in the queue, or back on the shelf.
func (s *Service) release(ctx context.Context, tx *gorm.DB, inst, itemID string, now time.Time) error {
	var it Item
	if err := tx.Where("institution = ? AND id = ?", inst, itemID).Take(&it).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		return err
	}
	if it.Status != StatusOnHoldShelf {
		return nil
	}
	held, err := s.holdForNext(ctx, tx, inst, &it, StatusOnHoldShelf, now)
	if err != nil || held != nil {
		return err
	}
	return tx.Model(&Item{}).Where("id = ? AND status = ?", it.ID, StatusOnHoldShelf).
		Updates(map[string]any{"status": StatusAvailable, "version": gorm.Expr("version + 1"), "updated_at": now}).Error
}

// heldFor returns the request an item on the hold shelf is held for.
func (s *Service) heldFor(db *gorm.DB, inst, itemID string) (*Request, error) {
	var r Request
	err := db.Where("institution = ? AND item_id = ? AND status = ?", inst, itemID, RequestOnHoldShelf).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &r, err
}
