package patronkit_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// TestSharedKeyIsMadeOnceForEveryInstance: instances on one database
// asking for a shared key at the same time all get the same one, and so
// does an instance started later; another name is another key; the key
// is stored once.
func TestSharedKeyIsMadeOnceForEveryInstance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		open := func() *patronkit.Kit {
			k, err := patronkit.New(db, &patronkit.Config{PINCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			if err := k.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return k
		}
		kits := []*patronkit.Kit{open(), open()}
		keys := make([][]byte, 8)
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = kits[i%2].SharedKey(ctx, "test.session", 32) })
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if len(keys[i]) != 32 || !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("instance %d got key %x, instance 0 %x", i%2, keys[i], keys[0])
			}
		}
		later, err := open().SharedKey(ctx, "test.session", 32)
		if err != nil || !bytes.Equal(later, keys[0]) {
			t.Fatalf("an instance started later got %x (%v), want %x", later, err, keys[0])
		}
		other, err := kits[0].SharedKey(ctx, "test.other", 32)
		if err != nil || bytes.Equal(other, keys[0]) {
			t.Fatalf("another name gave %x (%v)", other, err)
		}
		var n int64
		if err := db.Table("pk_shared_keys").Count(&n).Error; err != nil || n != 2 {
			t.Fatalf("%d keys stored (%v), want 2", n, err)
		}
		for _, bad := range []struct {
			name string
			size int
		}{{"", 32}, {"test.session", 8}, {"test.session", 128}} {
			if _, err := kits[0].SharedKey(ctx, bad.name, bad.size); err == nil {
				t.Errorf("SharedKey(%q, %d) gave no error", bad.name, bad.size)
			}
		}
		if _, err := kits[0].SharedKey(ctx, "test.session", 16); err == nil {
			t.Error("a key asked of another size than the one stored gave no error")
		}
	})
}
