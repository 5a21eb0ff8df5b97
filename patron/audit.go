package patron

import "context"

// Audit tells the service's AuditSink that the actor in ctx did action
// (AuditRead, AuditUpdate...) on what (the part of the record concerned)
// of a user, stamped with the service's clock: for what other modules
// keep about a user and audit alike, such as the roles of a staff user.
func (s *Service) Audit(ctx context.Context, inst, action, primaryID, what string) {
	s.emit(ctx, inst, action, primaryID, what)
}
