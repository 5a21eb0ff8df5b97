package patron

import (
	"context"
	"slices"

	"github.com/patronkit/patronkit/internal/keys"
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
	return e.Action == AuditRead && e.Actor.Patron && (e.Actor.Institution == "" || e.Actor.Institution == e.Institution) &&
		e.Actor.ID != "" && keys.Fold(e.Actor.ID) == keys.Fold(e.PrimaryID)
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

// RecordAuditMany is RecordAudit for several events at once, such as the
// users a read of a list returns: each event gives its Action, PrimaryID,
// What and Details, and the service sets its time, institution (inst),
// actor and origin from ctx. A sink that keeps several events in one call
// (AuditBatchRecorder, the kit's trail) gets them so, in one statement;
// any other gets them one by one. Its error is the sink's.
func (s *Service) RecordAuditMany(ctx context.Context, inst string, events []AuditEvent) error {
	if s.audit == nil || len(events) == 0 {
		return nil
	}
	es := make([]AuditEvent, len(events))
	for i, in := range events {
		e := s.event(ctx, inst, in.Action, in.PrimaryID, in.What)
		e.Details = in.Details
		es[i] = e
	}
	return s.keepMany(ctx, es)
}
