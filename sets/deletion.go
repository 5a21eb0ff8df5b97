package sets

import (
	"context"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/patron"
)

// DeletionHook forgets the users being deleted (erased, purged) in the
// sets and jobs, in their deletion's transaction: they leave the itemized
// sets, and the jobs' outcomes about them keep what happened (changed,
// refused) but lose their primary_id, their internal id and the values
// changed. A running job's list of members keeps their internal id, which
// names no one once the record is gone, so that its progress still
// reaches its total. Register it with the patron service's
// AddDeletionHook (the kit does). It acts for a batch of users in a few
// statements (patron.BatchDeletionHook).
func (s *Service) DeletionHook() patron.DeletionHook { return deletionHook{} }

type deletionHook struct{}

func (deletionHook) UserDeleting(ctx context.Context, tx *gorm.DB, u *patron.User) error {
	return deletionHook{}.UsersDeleting(ctx, tx, []*patron.User{u})
}

func (deletionHook) UsersDeleting(ctx context.Context, tx *gorm.DB, users []*patron.User) error {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	for _, q := range []string{
		"DELETE FROM pk_set_members WHERE user_id IN ?",
		"UPDATE pk_set_job_outcomes SET primary_id = '', changes = NULL, segments = NULL, user_id = '' WHERE user_id IN ?",
	} {
		if err := tx.Exec(q, ids).Error; err != nil {
			return err
		}
	}
	return nil
}
