package casbinmodel

import "slices"

// Action is one thing a library lets a role do, as policies name it:
// "loans.checkout", "fees.waive". Every adapter (the HTTP API, and later
// the Alma users API, a SIP2 server, the patron's web pages) asks the
// enforcer for the same action for the same deed; POLICIES.md lists them
// for policy authors.
type Action struct {
	// Name is what a policy line names ("loans.renew"): words separated
	// by dots, the first the area (users, loans, fees...).
	Name string
	// Description says, in library terms, what the action lets a role do.
	Description string
}

// actions is the whole vocabulary of the policies, in the order
// POLICIES.md lists them.
var actions = []Action{
	{"openapi.read", "Read the description of the HTTP API (its OpenAPI document)."},
	{"code_tables.read", "Read the code tables: the labels of codes such as user groups."},

	{"users.read", "Find users and read a user's record. With whose \"own\": only one's own record (what a patron is granted)."},
	{"users.create", "Register a user (fast registration at the desk included)."},
	{"users.write", "Change a user's record."},
	{"users.delete", "Delete a user."},
	{"users.staff", "Make or change STAFF records: create one, make a record STAFF or not, set a STAFF record's PIN or change its primary_id. Asked besides users.create or users.write, as a STAFF record signs in as staff and holds roles."},
	{"users.identifiers", "Add and remove a user's identifiers (barcodes, university ids)."},
	{"users.contacts", "Add and remove a user's addresses, emails and phones."},
	{"users.notes", "Add and remove notes on a user's record."},
	{"users.blocks", "Place and remove manual blocks on a user's record."},
	{"users.statistics", "Add and remove a user's statistical categories."},
	{"users.proxies", "Add and remove the users a user may borrow for (proxy for)."},
	{"users.personal_data", "Download everything held about a user as one document (their personal data: record, circulation, notices, files, SIS runs, settings), for a request of access; the export is audited."},
	{"users.legal_hold", "Set, replace or lift a legal hold on a user (with its reason): a held user is not deleted, purged or erased; audited."},
	{"users.legal_hold.read", "Read the legal hold on a user: its reason, who set it and when."},
	{"users.erase", "Erase a user now, on request: the same guards as a deletion (a legal hold among them); their closed loans, fees and requests anonymized, the audit trail forgetting their name; answers the proof of erasure, whose hash is on the trail."},
	{"users.overrides.read", "Read which fields of an external user staff changed by hand (kept over the SIS)."},
	{"users.overrides.restore", "Hand fields changed by hand back to the SIS."},
	{"attachments.read", "List and download the files kept with a user's record (notices sent, uploads)."},
	{"attachments.upload", "Upload a file to a user's record."},
	{"attachments.delete", "Delete a file kept with a user's record."},
	{"roles.read", "Read the roles a staff user holds (their user_roles)."},
	{"roles.assign", "Give staff users roles and take them away, in the libraries where this action is held; never one's own."},

	{"audit.read", "Search the audit trail of who read, changed or exported which user (by user, actor, action, way in and time) and export a search as CSV; the export is itself on the trail."},
	{"audit.verify", "Verify that the audit trail is whole: no entry altered, inserted or removed behind the kit's back."},
	{"privacy.anonymize", "Read the retention rules, run the anonymization of closed loans, fees, requests, notices and SIS outcomes now (or dry, counting), and read a run's report; each run is on the audit trail."},
	{"privacy.purge", "Purge the users past their purge date (and its grace) now, or dry: each erased with the guards of a deletion, a balance within the threshold waived, every kept user listed with its reasons; read a run's report and outcomes (JSON, CSV); ask a running purge to stop."},

	{"sis.profiles.read", "Read the SIS integration profiles."},
	{"sis.profiles.write", "Create, change and delete SIS integration profiles."},
	{"sis.run", "Run an SIS integration profile (load a file now)."},
	{"sis.export", "Export a profile's users or blocks as Alma XML."},
	{"sis.reports.read", "Read the runs of SIS profiles and their reports."},

	{"libraries.read", "Read the libraries, their time zone and closed days."},
	{"libraries.write", "Create, change and delete libraries."},
	{"items.read", "Find items and read one."},
	{"items.write", "Create, change, delete and bulk-load items."},
	{"terms.read", "Read the terms of use, and the terms a user would get for an item."},
	{"terms.write", "Replace the terms of use and the block limits."},

	{"loans.read", "Read the loans of a user and of an item, and one loan."},
	{"loans.checkout", "Lend an item (check-out), in the item's library."},
	{"loans.checkin", "Take an item back (check-in)."},
	{"loans.renew", "Renew loans, in their library."},
	{"loans.lost", "Declare an item lost, in its library."},
	{"loans.due_date", "Change the due date of a user's open loan by hand (no renewal counted, no terms of use applied), in its library."},
	{"blocks.read", "Read what blocks a user: manual blocks and automatic ones (fines, overdue loans, expiry)."},
	{"fees.read", "Read a user's fees and balance."},
	{"fees.charge", "Charge a user a manual fee."},
	{"fees.pay", "Take a payment of a fee."},
	{"fees.waive", "Waive a fee, in part or whole."},
	{"requests.read", "Read the hold requests of a user and an item's queue."},
	{"requests.place", "Place a hold request for a user, and change a waiting one's pickup library and last date of interest (the Alma users API's PUT of a request), where the request's pickup or item library allows."},
	{"requests.cancel", "Cancel a user's hold request, where its pickup or item library allows."},

	{"account.read", "The patron's own account: read their record and circulation at a glance, loans and loan history, requests, their place in a queue, the terms they would get, fees, blocks, notices and settings."},
	{"account.personal_data", "The patron's own account: download everything the library holds about them as one document (their personal data)."},
	{"account.access_log", "The patron's own account: read who else read, changed or exported their data (their access log), by role and library."},
	{"account.loans.renew", "The patron's own account: renew their loans."},
	{"account.requests.place", "The patron's own account: place a hold request."},
	{"account.requests.cancel", "The patron's own account: cancel one of their requests."},
	{"account.history.delete", "The patron's own account: delete their loan history now (their closed loans, fees, requests and notices are anonymized)."},
	{"account.settings.write", "The patron's own account: change their settings (preferred contacts, language, notices)."},

	{"api_keys.manage", "Make, list and revoke the API keys other applications call the kit with (the Alma users API): each acts as a STAFF user, whose roles decide what it may do; its secret is shown once. A key acting as another STAFF user than one's own needs users.staff too."},

	{"sets.read", "List the sets of users and read one: its count and its members in pages (each member read is on the audit trail)."},
	{"sets.manage", "Make sets of users (a saved query, or a file of identifiers, its lines naming no user reported), freeze a query set into an itemized one, and delete sets."},
	{"sets.jobs", "Run jobs over a set of users: preview an update of user information (the count, and for a sample each field's change) or a message to every member (each of a sample rendered), start it (every member changed, or sent the message through the notice outbox, in the background, each on the audit trail), follow its progress and outcomes, ask it to stop, and undo an ended update (every field it changed given back, unless the user changed since)."},
}

// Actions lists every action the policies may name, with what it lets a
// role do.
func Actions() []Action { return slices.Clone(actions) }

// IsAction tells whether name is one of Actions.
func IsAction(name string) bool {
	return slices.ContainsFunc(actions, func(a Action) bool { return a.Name == name })
}

// Whose values of a policy line (its fourth field) and of a decision.
const (
	// WhoseAny, in a policy line, grants the action on every record.
	WhoseAny = "*"
	// WhoseOwn grants it only on the subject's own record or account.
	WhoseOwn = "own"
	// WhoseOther grants it only on records other than the subject's own.
	WhoseOther = "other"
)
