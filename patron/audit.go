package patron

import (
	"context"

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
	return e.Action == AuditRead && e.Actor.Patron && e.Actor.Institution == e.Institution &&
		keys.Fold(e.Actor.ID) == keys.Fold(e.PrimaryID)
}
