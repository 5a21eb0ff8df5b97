package patron

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/tally"
	"github.com/patronkit/patronkit/internal/txctx"
)

// BatchDeletionGuard is a DeletionGuard that also answers for many users
// at once, in a few queries whatever their number: a purge asks it for a
// batch of users instead of asking DeletionReasons of each. Its answers
// are the ones DeletionReasons would give each user.
type BatchDeletionGuard interface {
	DeletionGuard
	// DeletionReasonsMany answers the objections per user id; a user
	// without any may be left out.
	DeletionReasonsMany(ctx context.Context, users []*User) (map[string][]string, error)
}

// BatchDeletionHook is a DeletionHook that also acts for many users at
// once, in the transaction that deletes them all.
type BatchDeletionHook interface {
	DeletionHook
	UsersDeleting(ctx context.Context, tx *gorm.DB, users []*User) error
}

// A Deletion is a batch of users of one institution held for deletion in
// the transaction that prepared it (PrepareDeletion): their rows are
// locked, so that what the guards watch (a check-out, a request) waits,
// and every guard has answered. Delete then removes those of them the
// caller chooses, in the same transaction. A Deletion is used by one
// goroutine, within its transaction.
type Deletion struct {
	s    *Service
	inst string
	// Users are the users found, in the order of their ids, with their
	// segments.
	Users []*User
	// Reasons are the guards' objections per user id; a user without
	// any may go.
	Reasons map[string][]string
	// Unrecorded leaves the deletions off the audit trail, for a caller
	// that records them itself in the same transaction: an erasure
	// records its proof of erasure in their place, under a name that is
	// not the user's.
	Unrecorded bool
	done       map[string]bool
}

// errDeletionNeedsTx says PrepareDeletion was called outside a
// transaction.
var errDeletionNeedsTx = errors.New("patron: PrepareDeletion needs the transaction ctx carries (patronkit.InTx)")

// PrepareDeletion locks the users ids of inst (internal ids; those not
// found are left out) in the transaction ctx carries, and asks every
// deletion guard about them: a BatchDeletionGuard once for all, another
// guard user by user. It changes nothing but the users' row versions.
func (s *Service) PrepareDeletion(ctx context.Context, inst string, ids []string) (*Deletion, error) {
	if !txctx.In(ctx) {
		return nil, errDeletionNeedsTx
	}
	tx := txctx.DB(ctx, s.db)
	d := &Deletion{s: s, inst: inst, Reasons: map[string][]string{}, done: map[string]bool{}}
	if len(ids) == 0 {
		return d, nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// The users' rows first: their locks make what a guard watches (a
	// check-out, a request) that takes a share lock on the user (see
	// LockUser) wait for this delete, or this delete wait for it, so
	// that the guards below, reading within this transaction, see what
	// was committed before.
	if err := tx.Model(&User{}).Where("institution = ? AND id IN ?", inst, ids).Update("version", gorm.Expr("version + 1")).Error; err != nil {
		return nil, err
	}
	var users []User
	if err := tx.Where("institution = ? AND id IN ?", inst, ids).Order("id").Find(&users).Error; err != nil {
		return nil, err
	}
	if err := loadSegmentsOf(tx, users); err != nil {
		return nil, err
	}
	d.Users = make([]*User, len(users))
	for i := range users {
		d.Users[i] = &users[i]
	}
	rs, err := s.reasons(ctx, d.Users)
	if err != nil {
		return nil, err
	}
	d.Reasons = rs
	return d, nil
}

// Ask asks every guard again about the users ids of the deletion, once
// the caller changed what a guard watches within the transaction (a
// purge waived a balance), and keeps their new answers in Reasons.
func (d *Deletion) Ask(ctx context.Context, ids ...string) error {
	var users []*User
	for _, u := range d.Users {
		if slices.Contains(ids, u.ID) {
			users = append(users, u)
			delete(d.Reasons, u.ID)
		}
	}
	rs, err := d.s.reasons(ctx, users)
	for id, r := range rs {
		d.Reasons[id] = r
	}
	return err
}

// Delete removes the users ids of the deletion (all of d.Users when none
// are named), with their segments, field overrides, sign-in state and
// attachments, in the transaction that prepared it: the deletion hooks
// act first, the deletions are on the audit trail, one entry per user,
// and the listeners are told once the transaction commits. A user a
// guard objected to is Refused with every reason, and nothing is
// deleted; so is a user not of the deletion or deleted already. It
// answers, per user id, how many rows of each table went, in the order
// DeleteCounted gives.
func (d *Deletion) Delete(ctx context.Context, ids ...string) (map[string][]RemovedRows, error) {
	s := d.s
	if !txctx.In(ctx) {
		return nil, errDeletionNeedsTx
	}
	tx := txctx.DB(ctx, s.db)
	of := make(map[string]*User, len(d.Users))
	for _, u := range d.Users {
		of[u.ID] = u
	}
	var users []*User
	if len(ids) == 0 {
		for _, u := range d.Users {
			if !d.done[u.ID] {
				users = append(users, u)
			}
		}
	}
	for _, id := range ids {
		u := of[id]
		if u == nil || d.done[id] {
			return nil, notFound("the user is not among those held for deletion")
		}
		users = append(users, u)
	}
	for _, u := range users {
		if err := d.Refusal(u.ID); err != nil {
			return nil, err
		}
	}
	if len(users) == 0 {
		return map[string][]RemovedRows{}, nil
	}
	for _, h := range s.hooks {
		if bh, ok := h.(BatchDeletionHook); ok {
			if err := bh.UsersDeleting(ctx, tx, users); err != nil {
				return nil, err
			}
			continue
		}
		for _, u := range users {
			if err := h.UserDeleting(ctx, tx, u); err != nil {
				return nil, err
			}
		}
	}
	removed := make(map[string][]RemovedRows, len(users))
	userIDs := make([]string, len(users))
	keys := make([]string, len(users))
	byKey := make(map[string]string, len(users))
	for i, u := range users {
		userIDs[i], keys[i], byKey[u.PrimaryIDKey] = u.ID, u.PrimaryIDKey, u.ID
	}
	// per notes the rows each user had in a table, counted before it went.
	per := func(table string, n map[string]int64) {
		for _, u := range users {
			removed[u.ID] = append(removed[u.ID], RemovedRows{Table: table, Rows: n[u.ID]})
		}
	}
	// del deletes the rows of model where the query holds.
	del := func(model any, where string, args ...any) error {
		return tx.Where(where, args...).Delete(model).Error
	}
	for _, m := range segmentModels {
		n := map[string]int64{}
		for _, u := range users {
			n[u.ID] = int64(segmentCount(u, m))
		}
		per(tableOf(m), n)
		if err := del(m, "user_id IN ?", userIDs); err != nil {
			return nil, err
		}
	}
	n, err := tally.By(tx, "SELECT user_id AS k, COUNT(*) AS n FROM pk_user_field_overrides WHERE user_id IN ? GROUP BY user_id", userIDs)
	if err != nil {
		return nil, err
	}
	per(FieldOverride{}.TableName(), n)
	if err := del(&FieldOverride{}, "user_id IN ?", userIDs); err != nil {
		return nil, err
	}
	byKeyN, err := tally.By(tx, "SELECT primary_id_key AS k, COUNT(*) AS n FROM pk_signin_failures WHERE institution = ? AND primary_id_key IN ? GROUP BY primary_id_key", d.inst, keys)
	if err != nil {
		return nil, err
	}
	n = map[string]int64{}
	for k, c := range byKeyN {
		n[byKey[k]] = c
	}
	per(SignInFailures{}.TableName(), n)
	if err := del(&SignInFailures{}, "institution = ? AND primary_id_key IN ?", d.inst, keys); err != nil {
		return nil, err
	}
	res := tx.Where("institution = ? AND id IN ?", d.inst, userIDs).Delete(&User{})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected != int64(len(users)) {
		return nil, &fault.Error{Kind: fault.Stale, Detail: "a user was deleted meanwhile; try again"}
	}
	n = map[string]int64{}
	for _, id := range userIDs {
		n[id] = 1
	}
	per(User{}.TableName(), n)
	// After the users' rows: an attachment being added at the same time
	// holds its user's row, so its commit comes first and it goes too.
	n, err = tally.By(tx, "SELECT a.user_id AS k, COUNT(*) AS n FROM pk_user_attachment_contents c JOIN pk_user_attachments a ON a.id = c.attachment_id WHERE a.user_id IN ? GROUP BY a.user_id", userIDs)
	if err != nil {
		return nil, err
	}
	per(attachmentContent{}.TableName(), n)
	attached := tx.Session(&gorm.Session{NewDB: true}).Model(&Attachment{}).Select("id").Where("user_id IN ?", userIDs)
	if err := del(&attachmentContent{}, "attachment_id IN (?)", attached); err != nil {
		return nil, err
	}
	n, err = tally.By(tx, "SELECT user_id AS k, COUNT(*) AS n FROM pk_user_attachments WHERE user_id IN ? GROUP BY user_id", userIDs)
	if err != nil {
		return nil, err
	}
	per(Attachment{}.TableName(), n)
	if err := del(&Attachment{}, "user_id IN ?", userIDs); err != nil {
		return nil, err
	}
	if s.audit != nil && !d.Unrecorded {
		es := make([]AuditEvent, len(users))
		for i, u := range users {
			es[i] = s.changeEvent(ctx, d.inst, AuditDelete, u, nil)
		}
		if err := s.keepMany(ctx, es); err != nil {
			return nil, err
		}
	}
	for _, u := range users {
		d.done[u.ID] = true
		s.changed(ctx, Change{Institution: d.inst, Action: Deleted, Before: s.finishRead(u)})
	}
	return removed, nil
}

// reasons asks every guard about users: a BatchDeletionGuard once for
// all, another user by user. A user without objections is left out.
func (s *Service) reasons(ctx context.Context, users []*User) (map[string][]string, error) {
	out := map[string][]string{}
	for _, g := range s.guards {
		if bg, ok := g.(BatchDeletionGuard); ok {
			rs, err := bg.DeletionReasonsMany(ctx, users)
			if err != nil {
				return nil, err
			}
			for _, u := range users {
				if len(rs[u.ID]) > 0 {
					out[u.ID] = append(out[u.ID], rs[u.ID]...)
				}
			}
			continue
		}
		for _, u := range users {
			r, err := g.DeletionReasons(ctx, u)
			if err != nil {
				return nil, err
			}
			if len(r) > 0 {
				out[u.ID] = append(out[u.ID], r...)
			}
		}
	}
	return out, nil
}

// Refusal is the Refused error that lists every objection to deleting
// the user id of the deletion, or nil when there is none.
func (d *Deletion) Refusal(id string) error {
	r := d.Reasons[id]
	if len(r) == 0 {
		return nil
	}
	name := id
	for _, u := range d.Users {
		if u.ID == id {
			name = u.PrimaryID
		}
	}
	return &fault.Error{Kind: fault.Refused, Detail: fmt.Sprintf("user %q cannot be deleted", name), Reasons: slices.Clone(r)}
}

// segmentCount is how many segments of model's table u has, as loaded.
func segmentCount(u *User, model any) int {
	switch model.(type) {
	case *Identifier:
		return len(u.Identifiers)
	case *Address:
		return len(u.Addresses)
	case *Email:
		return len(u.Emails)
	case *Phone:
		return len(u.Phones)
	case *Note:
		return len(u.Notes)
	case *Block:
		return len(u.Blocks)
	case *Statistic:
		return len(u.Statistics)
	case *ProxyFor:
		return len(u.ProxyFor)
	}
	return 0
}

// tableOf names the table of a segment model.
func tableOf(model any) string {
	return model.(interface{ TableName() string }).TableName()
}
