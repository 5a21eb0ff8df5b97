package patronkit_test

import (
	"slices"
	"testing"

	"github.com/patronkit/patronkit/patronkittest"
)

// An adapter registered with OnClose is stopped by Close, the last
// registered first, once, before the kit's own work stops.
func TestCloseStopsTheAdaptersRegistered(t *testing.T) {
	k := patronkittest.New(t)
	var order []string
	k.OnClose(func() { order = append(order, "first") })
	k.OnClose(func() { order = append(order, "second") })
	k.Close()
	k.Close()
	if !slices.Equal(order, []string{"second", "first"}) {
		t.Errorf("OnClose functions ran %q, want second then first, once", order)
	}
}
