package patron

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// DeletionGuard gives the reasons a user may not be deleted now (open loans,
// a balance, active requests...). An empty list means no objection.
// Circulation and privacy register guards; a host may add its own.
//
// Guards are asked inside the delete's transaction, once it holds the
// user's row (locked by an update): ctx carries that transaction (the
// host's own, when the delete joined one), and a guard that reads the
// database reads through it (patronkit.TxFrom), seeing what the
// transaction wrote; it must not write. A writer that must not race a
// delete (a check-out) calls LockUser in its own transaction, and so
// either commits before the guards read or finds the user gone. On
// MySQL, whose transactions read a snapshot taken at their first read, a
// host transaction that read before deleting has guards read that
// snapshot: hosts that delete users while check-outs go on open their
// transaction right before the delete.
type DeletionGuard interface {
	DeletionReasons(ctx context.Context, u *User) ([]string, error)
}

// DeletionGuardFunc adapts a function to a DeletionGuard.
type DeletionGuardFunc func(ctx context.Context, u *User) ([]string, error)

// DeletionReasons implements DeletionGuard.
func (f DeletionGuardFunc) DeletionReasons(ctx context.Context, u *User) ([]string, error) {
	return f(ctx, u)
}

// DeletionHook acts inside the transaction that deletes a user, once every
// guard agreed and before the user's rows go: what it writes through tx
// (which ctx carries too) commits with the deletion, and an error it
// returns cancels the deletion (nothing is deleted). The kit registers one
// that takes the user's roles away with them; a host may add its own to
// delete what it keeps about the user in the same database.
type DeletionHook interface {
	UserDeleting(ctx context.Context, tx *gorm.DB, u *User) error
}

// DeletionHookFunc adapts a function to a DeletionHook.
type DeletionHookFunc func(ctx context.Context, tx *gorm.DB, u *User) error

// UserDeleting implements DeletionHook.
func (f DeletionHookFunc) UserDeleting(ctx context.Context, tx *gorm.DB, u *User) error {
	return f(ctx, tx, u)
}

// Change actions told to listeners.
const (
	Created = "created"
	Updated = "updated"
	Deleted = "deleted"
)

// Change describes a committed change of a user record. Before is nil for a
// creation and After is nil for a deletion.
type Change struct {
	Institution string
	Action      string
	Before      *User
	After       *User
	Actor       Actor
}

// Listener is told after a change of a user record has been committed.
// It runs in the goroutine that commits; a slow listener slows the
// change. A change made within a host's transaction (patronkit.WithTx,
// Kit.InTx) is told when that transaction commits, and never when it
// rolls back: a listener acts only on what was kept, and may write
// through its own connections (on SQLite the host's transaction holds the
// one writer until then). Its ctx carries no transaction.
type Listener interface {
	UserChanged(ctx context.Context, c Change)
}

// ListenerFunc adapts a function to a Listener.
type ListenerFunc func(ctx context.Context, c Change)

// UserChanged implements Listener.
func (f ListenerFunc) UserChanged(ctx context.Context, c Change) { f(ctx, c) }

// Audit actions.
const (
	AuditRead   = "read"
	AuditCreate = "create"
	AuditUpdate = "update"
	AuditDelete = "delete"
	AuditExport = "export"
	// AuditSignInFailed: a wrong PIN, or an inactive account, for an
	// existing user; AuditLocked: the failures locked the account (for
	// one source, or for every source).
	AuditSignInFailed = "sign_in_failed"
	AuditLocked       = "locked"
)

// AuditEvent records that an actor read, changed or exported a user's data.
type AuditEvent struct {
	At          time.Time
	Institution string
	Actor       Actor
	Action      string
	PrimaryID   string
	// What names the part of the record concerned ("user", "notes"...).
	What string
	// Details tell more: for a change of a user record, the fields
	// changed with their old and new values (see ChangeDetails; secrets
	// such as the PIN only as "changed").
	Details string
	// Origin is the way in the call came by, as ctx carried it.
	Origin Origin
}

// Origin is the way a call came in, for the audit trail: the adapter that
// received it (an HTTP route, an SIS run, a job; empty for a host's own
// call), its request id, and the acting staff user's roles and library
// when the adapter knows them.
type Origin struct {
	Via       string
	RequestID string
	Roles     []string
	Library   string
}

type originKey struct{}

// WithOrigin returns a context that carries the way a call came in; the
// service names it in audit events.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin carried by ctx, if any.
func OriginFrom(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

// AuditSink receives audit events. The privacy module persists them; a host
// may send them elsewhere too. An event is given when the call returns,
// with the call's ctx; that of a change (create, update, delete) within
// the change's own transaction, before it commits. A sink that writes to
// the kit's database writes through the transaction ctx carries
// (patronkit.TxFrom), so that the event commits or rolls back with what
// it records.
type AuditSink interface {
	Audit(ctx context.Context, e AuditEvent)
}

// AuditRecorder is an AuditSink that tells whether it kept an event. A
// change whose event it could not keep fails, and nothing of it is kept:
// the privacy module's audit trail is one.
type AuditRecorder interface {
	AuditSink
	RecordAudit(ctx context.Context, e AuditEvent) error
}

// AuditBatchRecorder is an AuditRecorder that keeps several events in
// one call, all or none: the service gives it the entries of a list read
// or of a batch of created users at once, rather than one call each. The
// privacy module's audit trail is one (one statement per transaction).
type AuditBatchRecorder interface {
	AuditRecorder
	RecordAudits(ctx context.Context, es []AuditEvent) error
}

// AuditFunc adapts a function to an AuditSink.
type AuditFunc func(ctx context.Context, e AuditEvent)

// Audit implements AuditSink.
func (f AuditFunc) Audit(ctx context.Context, e AuditEvent) { f(ctx, e) }

// Actor is who acts: a staff user or a patron of an institution, or a
// system job (ID "system:<job>").
type Actor struct {
	Institution string
	ID          string
	Patron      bool
}

type actorKey struct{}

// WithActor returns a context that carries who is acting; the service
// stamps notes and blocks with it and names it in audit events.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor carried by ctx, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

func actorOf(ctx context.Context) Actor {
	a, _ := ActorFrom(ctx)
	return a
}
