package circulation_test

import (
	"context"
	"maps"
	"testing"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patronkittest"
)

// TestItemTitlesByID: the titles of the items named by id, in one read;
// an item of another institution, or no item, is left out.
func TestItemTitlesByID(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		a := patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Title = "Middlemarch" })
		b := patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Title = "Cosmos" })
		other := patronkittest.Item(t, k, "OTHER", func(it *circulation.Item) { it.Title = "Not yours" })
		got, err := k.Circulation.ItemTitles(ctx, "UNI", []string{a.ID, b.ID, other.ID, "no-such-id"})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{a.ID: "Middlemarch", b.ID: "Cosmos"}; !maps.Equal(got, want) {
			t.Fatalf("titles %v, want %v", got, want)
		}
		if got, err := k.Circulation.ItemTitles(ctx, "UNI", nil); err != nil || len(got) != 0 {
			t.Fatalf("no ids: %v %v", got, err)
		}
	})
}
