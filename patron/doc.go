// Package patron keeps a library's user (patron) records: the core fields
// and the segments (identifiers, addresses, emails, phones, notes, blocks,
// statistics, proxy-for relations) of each user, named as Alma names them so
// that an Alma user record maps field for field, and the files kept with
// each record (attachments: the notices sent to the user, the files staff
// upload).
//
// A user belongs to one institution and nothing reads or writes across
// institutions: every Service method takes the institution code.
//
// Every method reads and writes within the transaction its context
// carries, when it carries one (patronkit.WithTx, Kit.InTx), and writes in
// a savepoint of it: what it wrote commits or rolls back with the caller's
// own writes, and a call that fails leaves the transaction going.
// Listeners are told of changes once that transaction commits.
//
// The Service validates, enforces who may change what on external users
// (users that a Student Information System owns), remembers manual changes
// of the fields a synchronize keeps (field provenance), hashes PINs, and
// calls the hooks a host or another module registers:
//
//   - DeletionGuard: reasons a user cannot be deleted (circulation plugs in
//     here: loans, balances);
//   - DeletionHook: acts inside the transaction that deletes a user (the
//     kit takes the user's roles away here);
//   - Listener: told after a user was created, changed or deleted;
//   - AuditSink: told who read, changed or exported which user, and for a
//     change which fields it changed (ChangeDetails); a sink that tells
//     whether it kept an event (AuditRecorder) has the call fail when it
//     did not, before the data leaves or with the change rolled back.
//
// Hosts may implement those four interfaces (or use the Func adapters).
// Everything else in this package is for hosts to call, not to implement.
package patron
