package circulation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
)

// fromCatalog adds the item with barcode (trimmed, in the case the caller
// gave: barcodes match whatever their case) from the host's catalog
// (Options.Items) to the item table, as CreateItem adds one, and returns
// it: from then on the table holds it, circulation keeps its status, and
// the catalog is not asked again. An item the catalog does not have is
// NotFound. An item the catalog answers that cannot be added (another
// barcode, a library the institution does not have, a field CreateItem
// refuses) is an error of the host's catalog, not of the caller.
func (s *Service) fromCatalog(ctx context.Context, inst, barcode string) (*Item, error) {
	barcode = strings.TrimSpace(barcode)
	it, err := s.items.Item(ctx, inst, barcode)
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, notFound("no item with barcode %q", barcode)
	}
	if keys.Fold(it.Barcode) != keys.Fold(barcode) {
		return nil, fmt.Errorf("circulation: the catalog answered item %q for barcode %q", it.Barcode, barcode)
	}
	in := *it
	in.ID, in.Version = "", 0
	out, err := s.CreateItem(ctx, inst, &in)
	if errors.Is(err, fault.ErrConflict) {
		// Added meanwhile, by another request for it.
		return loadItem(s.conn(ctx), inst, barcode)
	}
	if pe, ok := fault.As(err); ok {
		return nil, fmt.Errorf("circulation: the catalog's item %q cannot be added: %s", barcode, pe.Error())
	}
	return out, err
}
