package ginapi

import (
	"net/http"
	"slices"
)

// Whose says on whose record a route acts, for the policies' "own" rule
// (casbinmodel.Decision.Own).
type Whose int

// Whose records routes act on.
const (
	// WhoseNone: the route names no user (a list of users, a library,
	// an item, a loan by its id).
	WhoseNone Whose = iota
	// WhoseNamed: the user the route's :primary_id names; the principal's
	// own when it is their primary_id.
	WhoseNamed
	// WhoseSelf: the principal's own account (the /me routes).
	WhoseSelf
)

// Route is a route of the API and what access control asks about it.
type Route struct {
	// Method and Path name the route below the mount point, the path in
	// Gin's form (/users/:primary_id). HEAD is decided as GET.
	Method string
	Path   string
	// Action is the action the enforcer is asked for (one of
	// casbinmodel.Actions), institution-wide before the handler runs;
	// the routes that concern one library (lending its item, editing
	// it) ask again in that library.
	Action string
	// Whose says whose record the route acts on.
	Whose Whose
}

// routeTable maps every route of the API to its action: Mount registers
// no route without one.
var routeTable = []Route{
	{http.MethodGet, "/openapi.json", "openapi.read", WhoseNone},
	{http.MethodGet, "/users", "users.read", WhoseNone},
	{http.MethodPost, "/users", "users.create", WhoseNone},
	{http.MethodGet, "/users/:primary_id", "users.read", WhoseNamed},
	{http.MethodPut, "/users/:primary_id", "users.write", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id", "users.delete", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/personal-data", "users.personal_data", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/legal-hold", "users.legal_hold.read", WhoseNamed},
	{http.MethodPut, "/users/:primary_id/legal-hold", "users.legal_hold", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/legal-hold", "users.legal_hold", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/erasure", "users.erase", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/overrides", "users.overrides.read", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/restore-sis-fields", "users.overrides.restore", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/user_identifiers", "users.identifiers", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/user_identifiers/:segment_id", "users.identifiers", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/addresses", "users.contacts", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/addresses/:segment_id", "users.contacts", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/emails", "users.contacts", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/emails/:segment_id", "users.contacts", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/phones", "users.contacts", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/phones/:segment_id", "users.contacts", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/user_notes", "users.notes", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/user_notes/:segment_id", "users.notes", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/user_blocks", "users.blocks", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/user_blocks/:segment_id", "users.blocks", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/user_statistics", "users.statistics", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/user_statistics/:segment_id", "users.statistics", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/proxy_for_users", "users.proxies", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/proxy_for_users/:segment_id", "users.proxies", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/attachments", "attachments.read", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/attachments/:attachment_id", "attachments.read", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/attachments", "attachments.upload", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/attachments/:attachment_id", "attachments.delete", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/user_roles", "roles.read", WhoseNamed},
	{http.MethodPut, "/users/:primary_id/user_roles", "roles.assign", WhoseNamed},
	{http.MethodGet, "/sis/profiles", "sis.profiles.read", WhoseNone},
	{http.MethodGet, "/sis/profiles/:code", "sis.profiles.read", WhoseNone},
	{http.MethodPost, "/sis/profiles", "sis.profiles.write", WhoseNone},
	{http.MethodPut, "/sis/profiles/:code", "sis.profiles.write", WhoseNone},
	{http.MethodDelete, "/sis/profiles/:code", "sis.profiles.write", WhoseNone},
	{http.MethodPost, "/sis/profiles/:code/runs", "sis.run", WhoseNone},
	{http.MethodPost, "/sis/profiles/:code/exports", "sis.export", WhoseNone},
	{http.MethodGet, "/sis/profiles/:code/runs", "sis.reports.read", WhoseNone},
	{http.MethodGet, "/sis/runs/:run_id", "sis.reports.read", WhoseNone},
	{http.MethodGet, "/sis/runs/:run_id/report", "sis.reports.read", WhoseNone},
	{http.MethodGet, "/code-tables", "code_tables.read", WhoseNone},
	{http.MethodGet, "/code-tables/:table", "code_tables.read", WhoseNone},
	{http.MethodGet, "/libraries", "libraries.read", WhoseNone},
	{http.MethodGet, "/libraries/:library", "libraries.read", WhoseNone},
	{http.MethodPost, "/libraries", "libraries.write", WhoseNone},
	{http.MethodPut, "/libraries/:library", "libraries.write", WhoseNone},
	{http.MethodDelete, "/libraries/:library", "libraries.write", WhoseNone},
	{http.MethodGet, "/items", "items.read", WhoseNone},
	{http.MethodGet, "/items/:barcode", "items.read", WhoseNone},
	{http.MethodPost, "/items", "items.write", WhoseNone},
	{http.MethodPost, "/items/bulk", "items.write", WhoseNone},
	{http.MethodPut, "/items/:barcode", "items.write", WhoseNone},
	{http.MethodDelete, "/items/:barcode", "items.write", WhoseNone},
	{http.MethodGet, "/terms-of-use", "terms.read", WhoseNone},
	{http.MethodGet, "/users/:primary_id/terms", "terms.read", WhoseNamed},
	{http.MethodPut, "/terms-of-use", "terms.write", WhoseNone},
	{http.MethodGet, "/users/:primary_id/loans", "loans.read", WhoseNamed},
	{http.MethodGet, "/items/:barcode/loans", "loans.read", WhoseNone},
	{http.MethodGet, "/loans/:loan_id", "loans.read", WhoseNone},
	{http.MethodPost, "/loans", "loans.checkout", WhoseNone},
	{http.MethodPost, "/returns", "loans.checkin", WhoseNone},
	{http.MethodPost, "/loans/:loan_id/renew", "loans.renew", WhoseNone},
	{http.MethodPost, "/users/:primary_id/loans/renew", "loans.renew", WhoseNamed},
	{http.MethodPost, "/items/:barcode/lost", "loans.lost", WhoseNone},
	{http.MethodGet, "/users/:primary_id/blocks", "blocks.read", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/fees", "fees.read", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/fees/:fee_id", "fees.read", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/fees", "fees.charge", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/fees/:fee_id/pay", "fees.pay", WhoseNamed},
	{http.MethodPost, "/users/:primary_id/fees/:fee_id/waive", "fees.waive", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/requests", "requests.read", WhoseNamed},
	{http.MethodGet, "/users/:primary_id/requests/:request_id", "requests.read", WhoseNamed},
	{http.MethodGet, "/items/:barcode/requests", "requests.read", WhoseNone},
	{http.MethodPost, "/users/:primary_id/requests", "requests.place", WhoseNamed},
	{http.MethodDelete, "/users/:primary_id/requests/:request_id", "requests.cancel", WhoseNamed},
	{http.MethodGet, "/me", "account.read", WhoseSelf},
	{http.MethodGet, "/me/loans", "account.read", WhoseSelf},
	{http.MethodGet, "/me/loans/history", "account.read", WhoseSelf},
	{http.MethodGet, "/me/requests", "account.read", WhoseSelf},
	{http.MethodGet, "/me/requests/:request_id", "account.read", WhoseSelf},
	{http.MethodGet, "/me/items/:barcode/queue", "account.read", WhoseSelf},
	{http.MethodGet, "/me/items/:barcode/terms", "account.read", WhoseSelf},
	{http.MethodGet, "/me/fees", "account.read", WhoseSelf},
	{http.MethodGet, "/me/blocks", "account.read", WhoseSelf},
	{http.MethodGet, "/me/notices", "account.read", WhoseSelf},
	{http.MethodGet, "/me/notices/:notice_id", "account.read", WhoseSelf},
	{http.MethodGet, "/me/settings", "account.read", WhoseSelf},
	{http.MethodGet, "/me/personal-data", "account.personal_data", WhoseSelf},
	{http.MethodGet, "/me/access-log", "account.access_log", WhoseSelf},
	{http.MethodGet, "/audit/entries", "audit.read", WhoseNone},
	{http.MethodGet, "/audit/verify", "audit.verify", WhoseNone},
	{http.MethodGet, "/privacy/retention", "privacy.anonymize", WhoseNone},
	{http.MethodPost, "/privacy/anonymization-runs", "privacy.anonymize", WhoseNone},
	{http.MethodGet, "/privacy/anonymization-runs/:run_id", "privacy.anonymize", WhoseNone},
	{http.MethodPost, "/privacy/purge-runs", "privacy.purge", WhoseNone},
	{http.MethodGet, "/privacy/purge-runs/:run_id", "privacy.purge", WhoseNone},
	{http.MethodGet, "/privacy/purge-runs/:run_id/outcomes", "privacy.purge", WhoseNone},
	{http.MethodPost, "/privacy/purge-runs/:run_id/cancel", "privacy.purge", WhoseNone},
	{http.MethodPost, "/me/loans/history/delete", "account.history.delete", WhoseSelf},
	{http.MethodPost, "/me/loans/renew", "account.loans.renew", WhoseSelf},
	{http.MethodPost, "/me/requests", "account.requests.place", WhoseSelf},
	{http.MethodDelete, "/me/requests/:request_id", "account.requests.cancel", WhoseSelf},
	{http.MethodPatch, "/me/settings", "account.settings.write", WhoseSelf},
	{http.MethodPost, "/api-keys", "api_keys.manage", WhoseNone},
	{http.MethodGet, "/api-keys", "api_keys.manage", WhoseNone},
	{http.MethodDelete, "/api-keys/:key_id", "api_keys.manage", WhoseNone},
	{http.MethodPost, "/sets", "sets.manage", WhoseNone},
	{http.MethodGet, "/sets", "sets.read", WhoseNone},
	{http.MethodGet, "/sets/:set_id", "sets.read", WhoseNone},
	{http.MethodGet, "/sets/:set_id/members", "sets.read", WhoseNone},
	{http.MethodPost, "/sets/:set_id/freeze", "sets.manage", WhoseNone},
	{http.MethodDelete, "/sets/:set_id", "sets.manage", WhoseNone},
	{http.MethodPost, "/sets/:set_id/preview", "sets.jobs", WhoseNone},
	{http.MethodPost, "/sets/:set_id/jobs", "sets.jobs", WhoseNone},
	{http.MethodGet, "/jobs/:job_id", "sets.jobs", WhoseNone},
	{http.MethodGet, "/jobs/:job_id/outcomes", "sets.jobs", WhoseNone},
	{http.MethodPost, "/jobs/:job_id/cancel", "sets.jobs", WhoseNone},
	{http.MethodPost, "/jobs/:job_id/undo", "sets.jobs", WhoseNone},
}

// Routes lists every route Mount registers (besides HEAD on each GET
// route) with the action it asks the enforcer for: what a policy author
// grants so that a role may use a route. The OpenAPI document names the
// same action on each operation (x-patronkit-action).
func Routes() []Route { return slices.Clone(routeTable) }

// routeOf is the table's route of method and path (HEAD is GET's).
func routeOf(method, path string) (Route, bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	i := slices.IndexFunc(routeTable, func(r Route) bool { return r.Method == method && r.Path == path })
	if i < 0 {
		return Route{}, false
	}
	return routeTable[i], true
}
