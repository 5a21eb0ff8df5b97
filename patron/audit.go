package patron

import "context"

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
