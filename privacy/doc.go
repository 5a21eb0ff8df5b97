// Package privacy holds the library's duties towards the people it keeps
// records of: the tamper-evident audit trail of who read, changed or
// exported which user's data (Service), and what it holds about a person,
// answered whole (their right of access, PersonalDataService).
//
// The trail is kept per institution as a hash chain: each entry carries a
// sequence number and the SHA-256 of its content and of the previous
// entry's hash, so that Verify finds an entry altered, inserted or removed
// behind the kit's back. Prune drops entries older than a given time and
// leaves a checkpoint signed with the HMAC key of Options, from which the
// rest of the chain is verified. Search pages through a trail, the newest
// first, by user, actor, action, way in and time, WriteCSV exports it, and
// AccessLog answers what others did with one user's data. Forget takes a
// purged or erased user's name off the trail (a pseudonym or a tombstone
// in its place) with a redaction signed with the same key, so that the
// chain still verifies and a forgetting forged without the key is found;
// RecordErasure records the hash of an erasure's report on the trail.
//
// Retention anonymizes closed loans, fees, requests, notices and SIS
// outcomes once the institution's retention rules (RetentionRule) or the
// patron's own choice say so: the records stay for statistics, with a
// snapshot of what does not identify their patron (Anonymized), in
// batches under a lease that lets one instance at a time work on an
// institution; AnonymizeUser does it for one user within the caller's
// transaction.
//
// It knows no web framework: the HTTP adapter (adapters/ginapi) calls it.
package privacy
