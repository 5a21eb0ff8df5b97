package patron

import (
	"context"
	"slices"
	"sync"

	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/internal/txctx"
)

// Audit tells the service's AuditSink that the actor in ctx did action
// (AuditRead, AuditUpdate...) on what (the part of the record concerned)
// of a user, stamped with the service's clock: for what other modules
// keep about a user and audit alike, such as the roles of a staff user.
func (s *Service) Audit(ctx context.Context, inst, action, primaryID, what string) {
	s.emit(ctx, inst, action, primaryID, what)
}

// RecordAudit is Audit for what must not happen unrecorded: a change
// other modules make to what they keep about a user, given within the
// change's transaction (ctx carries it, patronkit.TxFrom), or a read
// before its data leaves. With a sink that tells whether it kept the
// event (AuditRecorder, the kit's trail), its error is the sink's and the
// caller fails: the change rolls back, the data is not handed out.
// details are those of AuditEvent.
func (s *Service) RecordAudit(ctx context.Context, inst, action, primaryID, what, details string) error {
	if s.audit == nil {
		return nil
	}
	e := s.event(ctx, inst, action, primaryID, what)
	e.Details = details
	return s.keep(ctx, e)
}

// ownRead tells whether e is a patron reading their own data. The service
// gives such reads to no sink: the trail records who else accessed a
// patron's data, and a log of when patrons looked at their own account
// would be personal data kept for nothing. Their changes and exports
// (their personal-data download) are recorded like anyone's.
func ownRead(e AuditEvent) bool {
	return e.Action == AuditRead && e.Actor.Patron && e.Actor.Institution == e.Institution &&
		keys.Fold(e.Actor.ID) == keys.Fold(e.PrimaryID)
}

// AuditSubject is one user an event of RecordAuditMany is about: their
// primary_id and the details of the event for them (see AuditEvent).
type AuditSubject struct {
	PrimaryID string
	Details   string
}

// RecordAuditMany is RecordAudit for one action of the actor in ctx on
// the part what of several users at once, such as a read of a list that
// names several borrowers: one event per subject, in order. Within a
// transaction ctx carries, the events are given one after the other
// through it; otherwise they are given all at once, so that a sink that
// writes concurrent events together (the kit's trail) writes them in one
// go, and the call returns when every one is kept. Its error is the
// first the sink gave: the caller fails, the data is not handed out.
func (s *Service) RecordAuditMany(ctx context.Context, inst, action, what string, subjects []AuditSubject) error {
	if s.audit == nil || len(subjects) == 0 {
		return nil
	}
	es := make([]AuditEvent, len(subjects))
	for i, sub := range subjects {
		es[i] = s.event(ctx, inst, action, sub.PrimaryID, what)
		es[i].Details = sub.Details
	}
	if _, ok := s.audit.(AuditRecorder); !ok || len(es) == 1 || txctx.In(ctx) {
		for _, e := range es {
			if err := s.keep(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(es))
	var wg sync.WaitGroup
	for i := range es {
		wg.Go(func() { errs[i] = s.keep(ctx, es[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// PrimaryIDs returns the primary_ids, as the records spell them now, of
// the users of inst whose internal ids are ids (see ID), keyed by id; an
// id no user holds is left out. It reads nothing else of the records and
// is not audited: for modules that name in the audit trail the users
// their rows are about (a loan's patron may have changed primary_id since
// the loan was made).
func (s *Service) PrimaryIDs(ctx context.Context, inst string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []User
	for chunk := range slices.Chunk(ids, 500) {
		rows = rows[:0]
		if err := s.conn(ctx).Select("id", "primary_id").Where("institution = ? AND id IN ?", inst, chunk).Find(&rows).Error; err != nil {
			return nil, err
		}
		for _, u := range rows {
			out[u.ID] = u.PrimaryID
		}
	}
	return out, nil
}
