package patron

import (
	"context"
	"slices"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/keys"
)

// createMany adds, in one transaction, the new users of a batch that
// collide with nothing held and with no other user of the batch. It returns
// the ones it left for the one-by-one path: those that collide (so that
// their rejection gives the reason) or all of them when the transaction
// fails, since each user must be applied whole or not at all.
func (s *Service) createMany(ctx context.Context, inst string, in []*User, hashes []string, fresh []int, out []Applied) []int {
	if len(fresh) == 0 {
		return nil
	}
	var left, take []int
	pids := map[string]bool{}
	ids := map[[2]string]bool{}
	var pidKeys, idTypes, idKeys []string
	for _, i := range fresh {
		pidKeys = append(pidKeys, in[i].PrimaryIDKey)
		for _, id := range in[i].Identifiers {
			if !slices.Contains(idTypes, id.IDType) {
				idTypes = append(idTypes, id.IDType)
			}
			idKeys = append(idKeys, id.ValueKey)
		}
	}
	var heldPIDs []string
	var heldIDs []struct{ IDType, ValueKey string }
	err := s.lookups(ctx, func(db *gorm.DB) error {
		if err := db.Model(&User{}).Where("institution = ? AND primary_id_key IN ?", inst, pidKeys).Pluck("primary_id_key", &heldPIDs).Error; err != nil {
			return err
		}
		if len(idKeys) == 0 {
			return nil
		}
		return db.Model(&Identifier{}).Select("id_type, value_key").Where("institution = ? AND id_type IN ? AND value_key IN ?", inst, idTypes, idKeys).Scan(&heldIDs).Error
	})
	if err != nil {
		s.log.Warn("patron: bulk create: reading held primary ids and identifiers", "error", err)
		return fresh
	}
	for _, k := range heldPIDs {
		pids[k] = true
	}
	for _, h := range heldIDs {
		ids[[2]string{h.IDType, h.ValueKey}] = true
	}
	for _, i := range fresh {
		u := in[i]
		clash := pids[u.PrimaryIDKey]
		for _, id := range u.Identifiers {
			clash = clash || ids[[2]string{id.IDType, id.ValueKey}]
		}
		if clash {
			left = append(left, i)
			continue
		}
		pids[u.PrimaryIDKey] = true
		for _, id := range u.Identifiers {
			ids[[2]string{id.IDType, id.ValueKey}] = true
		}
		take = append(take, i)
	}
	if len(take) == 0 {
		return left
	}
	now := s.clock()
	users := make([]*User, 0, len(take))
	for _, i := range take {
		u := in[i]
		if u.PINNumber != "" {
			h, err := s.hashPIN(u.PINNumber)
			if err != nil {
				return fresh
			}
			u.PINHash, u.PINNumber = h, ""
		}
		u.ID, u.Version, u.CreatedAt, u.UpdatedAt, u.SISHash = keys.NewID(), 1, now, now, hashes[i]
		stampSIS(u, now)
		eachSegment(u, func(_ string, seg *Segment) { seg.ID, seg.UserID = keys.NewID(), u.ID })
		users = append(users, u)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := tx.Omit(segmentAssociations...).CreateInBatches(users, 100).Error; err != nil {
			return err
		}
		err := firstErr(
			insertAll(tx, users, func(u *User) []Identifier { return u.Identifiers }),
			insertAll(tx, users, func(u *User) []Address { return u.Addresses }),
			insertAll(tx, users, func(u *User) []Email { return u.Emails }),
			insertAll(tx, users, func(u *User) []Phone { return u.Phones }),
			insertAll(tx, users, func(u *User) []Note { return u.Notes }),
			insertAll(tx, users, func(u *User) []Block { return u.Blocks }),
			insertAll(tx, users, func(u *User) []Statistic { return u.Statistics }),
			insertAll(tx, users, func(u *User) []ProxyFor { return u.ProxyFor }),
		)
		if err != nil || s.audit == nil {
			return err
		}
		// The users' entries commit with them, kept in one call.
		es := make([]AuditEvent, len(users))
		for i, u := range users {
			es[i] = s.changeEvent(ctx, inst, AuditCreate, nil, u)
		}
		return s.keepMany(ctx, es)
	})
	if err != nil {
		// A write of another process came between: apply them one by one.
		s.log.Info("patron: bulk create fell back to one user at a time", "users", len(users), "error", err)
		for _, u := range users {
			u.ID = ""
		}
		return fresh
	}
	for _, i := range take {
		u := in[i]
		out[i] = Applied{PrimaryID: u.PrimaryID, Effect: EffectCreated, UserID: u.ID}
		created := s.finishRead(u)
		s.changed(ctx, Change{Institution: inst, Action: Created, After: created})
	}
	return left
}

// insertAll writes one segment list of many users in multi-row inserts.
func insertAll[T any](tx *gorm.DB, users []*User, list func(*User) []T) func() error {
	return func() error {
		var rows []T
		for _, u := range users {
			rows = append(rows, list(u)...)
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.CreateInBatches(rows, 500).Error
	}
}
