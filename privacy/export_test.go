package privacy

import (
	"context"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/txctx"
)

// Pending is how many entries of calls outside a transaction wait for the
// writer.
func Pending(s *Service) int64 { return s.pending.Load() }

// SetCSVBatch makes WriteCSV read n entries at a time until the test ends.
func SetCSVBatch(t interface{ Cleanup(func()) }, n int) {
	old := csvBatch
	csvBatch = n
	t.Cleanup(func() { csvBatch = old })
}

// SetAfterBatch calls f after each batch a run of r commits (or counts),
// from the goroutine that wrote it (two may call it at once).
func SetAfterBatch(r *Retention, f func(kind string)) { r.afterBatch = f }

// SetPurgeAfterBatch calls f after each batch a purge of p goes through.
func SetPurgeAfterBatch(p *Purger, f func()) { p.afterBatch = f }

// EraseTogether erases the users primaryIDs of inst in one batch, as a
// purge does, and answers each one's proof by primary_id.
func EraseTogether(ctx context.Context, e *Eraser, inst string, primaryIDs ...string) (map[string]*ErasureProof, error) {
	ids := make([]string, len(primaryIDs))
	for i, p := range primaryIDs {
		id, _, err := e.patrons.ID(ctx, inst, p)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	out := map[string]*ErasureProof{}
	err := txctx.Transaction(ctx, e.db, func(ctx context.Context, tx *gorm.DB) error {
		d, err := e.patrons.PrepareDeletion(ctx, inst, ids)
		if err != nil {
			return err
		}
		done, err := e.eraseHeld(ctx, tx, inst, d, d.Users, "")
		for _, u := range d.Users {
			out[u.PrimaryID] = done[u.ID].proof
		}
		return err
	})
	return out, err
}
