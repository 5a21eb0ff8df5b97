package circulation

import (
	"context"
	"errors"
	"strings"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/patron"
)

// ItemByID returns an item by its internal id (Item.ID, the item_id a loan
// names), which stays when staff change the item's barcode: for a client
// that names items by id (the Alma users API's item_pid). An unknown id is
// NotFound.
func (s *Service) ItemByID(ctx context.Context, inst, id string) (*Item, error) {
	id = strings.TrimSpace(id)
	if id == "" || !patron.Findable(id) {
		return nil, notFound("no item with id %q", id)
	}
	var it Item
	err := s.conn(ctx).Where("institution = ? AND id = ?", inst, id).Take(&it).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no item with id %q", id)
	}
	if err != nil {
		return nil, s.translate(err)
	}
	return &it, nil
}
