package casbinmodel

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/internal/migrate"
)

// The policies of earlier releases named URL paths below the HTTP API's
// mount point and HTTP methods (p, role, library, /users/:id, ^(GET|PUT)$).
// What follows is frozen as those releases left it, for the migrations
// that upgrade their databases: the default policy they seeded, and the
// routes of the API they decided, each with the action that decides it
// now. Later changes of the API's routes do not change them.

// legacyPolicy is the last default policy on URLs. The migrations of the
// releases that added its lines add them from here, as they did then.
const legacyPolicy = `# Default policies: what each role may do, in every library ("*").
# Role assignments (g lines) are per institution and library, e.g.
#   g, DEMO/desk, circulation-desk-operator, MAIN
#   g, DEMO/librarian, user-administrator, *
# Paths are below the mount point; :name matches one path segment, and
# :self matches only the asker's own primary_id; a part in parentheses is a
# regular expression, (a|b) matching either word.

# A patron: their own record, read only.
p, patron, *, /openapi.json, ^(GET)$
p, patron, *, /users/:self, ^(GET)$

# Circulation desk operator: find and register patrons, note and block them,
# read their attachments and upload files.
p, circulation-desk-operator, *, /openapi.json, ^(GET)$
p, circulation-desk-operator, *, /users, ^(GET|POST)$
p, circulation-desk-operator, *, /users/:id, ^(GET)$
p, circulation-desk-operator, *, /users/:id/user_notes, ^(POST)$
p, circulation-desk-operator, *, /users/:id/user_notes/:segment, ^(DELETE)$
p, circulation-desk-operator, *, /users/:id/user_blocks, ^(POST)$
p, circulation-desk-operator, *, /users/:id/user_blocks/:segment, ^(DELETE)$
p, circulation-desk-operator, *, /users/:id/attachments, ^(GET|POST)$
p, circulation-desk-operator, *, /users/:id/attachments/:attachment, ^(GET)$

# User manager: everything on users but deleting them.
p, user-manager, *, /openapi.json, ^(GET)$
p, user-manager, *, /users, ^(GET|POST)$
p, user-manager, *, /users/:id, ^(GET|PUT)$
p, user-manager, *, /users/:id/overrides, ^(GET)$
p, user-manager, *, /users/:id/(user_identifiers|addresses|emails|phones|user_notes|user_blocks|user_statistics|proxy_for_users), ^(POST)$
p, user-manager, *, /users/:id/(user_identifiers|addresses|emails|phones|user_notes|user_blocks|user_statistics|proxy_for_users)/:segment, ^(DELETE)$
p, user-manager, *, /users/:id/attachments, ^(GET|POST)$
p, user-manager, *, /users/:id/attachments/:attachment, ^(GET|DELETE)$

# User administrator: everything on users.
p, user-administrator, *, /openapi.json, ^(GET)$
p, user-administrator, *, /users, ^(GET|POST)$
p, user-administrator, *, /users/:id, ^(GET|PUT|DELETE)$
p, user-administrator, *, /users/:id/overrides, ^(GET)$
p, user-administrator, *, /users/:id/(user_identifiers|addresses|emails|phones|user_notes|user_blocks|user_statistics|proxy_for_users), ^(POST)$
p, user-administrator, *, /users/:id/(user_identifiers|addresses|emails|phones|user_notes|user_blocks|user_statistics|proxy_for_users)/:segment, ^(DELETE)$
p, user-administrator, *, /users/:id/attachments, ^(GET|POST)$
p, user-administrator, *, /users/:id/attachments/:attachment, ^(GET|DELETE)$
# Staff records: creating one (POST), making a record STAFF or no longer
# STAFF, setting a STAFF record's PIN or changing its primary_id (PUT). Not a route: the API asks
# for it besides the route's own permission, as a STAFF record signs in as
# staff and holds roles.
p, user-administrator, *, /users/:id/staff, ^(POST|PUT)$

# Fulfillment administrator: reads users (circulation rules come with the
# circulation module).
p, fulfillment-administrator, *, /openapi.json, ^(GET)$
p, fulfillment-administrator, *, /users, ^(GET)$
p, fulfillment-administrator, *, /users/:id, ^(GET)$

# Auditor: reads everything, changes nothing.
p, auditor, *, /openapi.json, ^(GET)$
p, auditor, *, /users, ^(GET)$
p, auditor, *, /users/:id, ^(GET)$
p, auditor, *, /users/:id/overrides, ^(GET)$
p, auditor, *, /users/:id/attachments, ^(GET)$
p, auditor, *, /users/:id/attachments/:attachment, ^(GET)$

# SIS integration: user administrators keep the profiles; user managers run
# them and hand fields back to the SIS; auditors read profiles and reports.
p, user-administrator, *, /sis/profiles, ^(GET|POST)$
p, user-administrator, *, /sis/profiles/:code, ^(GET|PUT|DELETE)$
p, user-administrator, *, /sis/profiles/:code/runs, ^(GET|POST)$
p, user-administrator, *, /sis/runs/:id, ^(GET)$
p, user-administrator, *, /sis/runs/:id/report, ^(GET)$
p, user-administrator, *, /users/:id/restore-sis-fields, ^(POST)$
p, user-administrator, *, /sis/profiles/:code/exports, ^(POST)$
p, user-manager, *, /sis/profiles, ^(GET)$
p, user-manager, *, /sis/profiles/:code, ^(GET)$
p, user-manager, *, /sis/profiles/:code/runs, ^(GET|POST)$
p, user-manager, *, /sis/runs/:id, ^(GET)$
p, user-manager, *, /sis/runs/:id/report, ^(GET)$
p, user-manager, *, /users/:id/restore-sis-fields, ^(POST)$
p, user-manager, *, /sis/profiles/:code/exports, ^(POST)$
p, auditor, *, /sis/profiles, ^(GET)$
p, auditor, *, /sis/profiles/:code, ^(GET)$
p, auditor, *, /sis/profiles/:code/runs, ^(GET)$
p, auditor, *, /sis/runs/:id, ^(GET)$
p, auditor, *, /sis/runs/:id/report, ^(GET)$

# Code tables (the labels of codes such as user groups): anyone signed in.
p, patron, *, /code-tables, ^(GET)$
p, patron, *, /code-tables/:table, ^(GET)$
p, circulation-desk-operator, *, /code-tables, ^(GET)$
p, circulation-desk-operator, *, /code-tables/:table, ^(GET)$
p, user-manager, *, /code-tables, ^(GET)$
p, user-manager, *, /code-tables/:table, ^(GET)$
p, user-administrator, *, /code-tables, ^(GET)$
p, user-administrator, *, /code-tables/:table, ^(GET)$
p, fulfillment-administrator, *, /code-tables, ^(GET)$
p, fulfillment-administrator, *, /code-tables/:table, ^(GET)$
p, auditor, *, /code-tables, ^(GET)$
p, auditor, *, /code-tables/:table, ^(GET)$

# Circulation: fulfillment administrators keep the libraries, the items and
# the terms of use; desk operators, user managers, user administrators and
# auditors read them and ask what terms a user would get for an item.
p, fulfillment-administrator, *, /libraries, ^(GET|POST)$
p, fulfillment-administrator, *, /libraries/:library, ^(GET|PUT|DELETE)$
p, fulfillment-administrator, *, /items, ^(GET|POST)$
p, fulfillment-administrator, *, /items/bulk, ^(POST)$
p, fulfillment-administrator, *, /items/:barcode, ^(GET|PUT|DELETE)$
p, fulfillment-administrator, *, /terms-of-use, ^(GET|PUT)$
p, fulfillment-administrator, *, /users/:id/terms, ^(GET)$
p, circulation-desk-operator, *, /libraries, ^(GET)$
p, circulation-desk-operator, *, /libraries/:library, ^(GET)$
p, circulation-desk-operator, *, /items, ^(GET)$
p, circulation-desk-operator, *, /items/:barcode, ^(GET)$
p, circulation-desk-operator, *, /terms-of-use, ^(GET)$
p, circulation-desk-operator, *, /users/:id/terms, ^(GET)$
p, user-manager, *, /libraries, ^(GET)$
p, user-manager, *, /libraries/:library, ^(GET)$
p, user-manager, *, /items, ^(GET)$
p, user-manager, *, /items/:barcode, ^(GET)$
p, user-manager, *, /terms-of-use, ^(GET)$
p, user-manager, *, /users/:id/terms, ^(GET)$
p, user-administrator, *, /libraries, ^(GET)$
p, user-administrator, *, /libraries/:library, ^(GET)$
p, user-administrator, *, /items, ^(GET)$
p, user-administrator, *, /items/:barcode, ^(GET)$
p, user-administrator, *, /terms-of-use, ^(GET)$
p, user-administrator, *, /users/:id/terms, ^(GET)$
p, auditor, *, /libraries, ^(GET)$
p, auditor, *, /libraries/:library, ^(GET)$
p, auditor, *, /items, ^(GET)$
p, auditor, *, /items/:barcode, ^(GET)$
p, auditor, *, /terms-of-use, ^(GET)$
p, auditor, *, /users/:id/terms, ^(GET)$

# Loans: desk operators and fulfillment administrators lend, renew and take
# back items; user managers, user administrators and auditors read the
# loans of a user and of an item.
p, circulation-desk-operator, *, /loans, ^(POST)$
p, circulation-desk-operator, *, /loans/:loan/renew, ^(POST)$
p, circulation-desk-operator, *, /users/:id/loans/renew, ^(POST)$
p, circulation-desk-operator, *, /returns, ^(POST)$
p, circulation-desk-operator, *, /users/:id/loans, ^(GET)$
p, circulation-desk-operator, *, /items/:barcode/loans, ^(GET)$
p, fulfillment-administrator, *, /loans, ^(POST)$
p, fulfillment-administrator, *, /loans/:loan/renew, ^(POST)$
p, fulfillment-administrator, *, /users/:id/loans/renew, ^(POST)$
p, fulfillment-administrator, *, /returns, ^(POST)$
p, fulfillment-administrator, *, /users/:id/loans, ^(GET)$
p, fulfillment-administrator, *, /items/:barcode/loans, ^(GET)$
p, user-manager, *, /users/:id/loans, ^(GET)$
p, user-manager, *, /items/:barcode/loans, ^(GET)$
p, user-administrator, *, /users/:id/loans, ^(GET)$
p, user-administrator, *, /items/:barcode/loans, ^(GET)$
p, auditor, *, /users/:id/loans, ^(GET)$
p, auditor, *, /items/:barcode/loans, ^(GET)$

# One loan, declaring an item lost, a user's blocks (manual and automatic),
# and fees: desk operators read fees, charge manual ones and take payments;
# fulfillment administrators also waive; user managers, user administrators
# and auditors read them.
p, circulation-desk-operator, *, /loans/:loan, ^(GET)$
p, circulation-desk-operator, *, /items/:barcode/lost, ^(POST)$
p, circulation-desk-operator, *, /users/:id/blocks, ^(GET)$
p, circulation-desk-operator, *, /users/:id/fees, ^(GET|POST)$
p, circulation-desk-operator, *, /users/:id/fees/:fee, ^(GET)$
p, circulation-desk-operator, *, /users/:id/fees/:fee/pay, ^(POST)$
p, fulfillment-administrator, *, /loans/:loan, ^(GET)$
p, fulfillment-administrator, *, /items/:barcode/lost, ^(POST)$
p, fulfillment-administrator, *, /users/:id/blocks, ^(GET)$
p, fulfillment-administrator, *, /users/:id/fees, ^(GET|POST)$
p, fulfillment-administrator, *, /users/:id/fees/:fee, ^(GET)$
p, fulfillment-administrator, *, /users/:id/fees/:fee/(pay|waive), ^(POST)$
p, user-manager, *, /loans/:loan, ^(GET)$
p, user-manager, *, /users/:id/blocks, ^(GET)$
p, user-manager, *, /users/:id/fees, ^(GET)$
p, user-manager, *, /users/:id/fees/:fee, ^(GET)$
p, user-administrator, *, /loans/:loan, ^(GET)$
p, user-administrator, *, /users/:id/blocks, ^(GET)$
p, user-administrator, *, /users/:id/fees, ^(GET)$
p, user-administrator, *, /users/:id/fees/:fee, ^(GET)$
p, auditor, *, /loans/:loan, ^(GET)$
p, auditor, *, /users/:id/blocks, ^(GET)$
p, auditor, *, /users/:id/fees, ^(GET)$
p, auditor, *, /users/:id/fees/:fee, ^(GET)$

# Requests: desk operators and fulfillment administrators place and cancel
# them for users; user managers, user administrators and auditors read
# them.
p, circulation-desk-operator, *, /users/:id/requests, ^(GET|POST)$
p, circulation-desk-operator, *, /users/:id/requests/:request, ^(GET|DELETE)$
p, circulation-desk-operator, *, /items/:barcode/requests, ^(GET)$
p, fulfillment-administrator, *, /users/:id/requests, ^(GET|POST)$
p, fulfillment-administrator, *, /users/:id/requests/:request, ^(GET|DELETE)$
p, fulfillment-administrator, *, /items/:barcode/requests, ^(GET)$
p, user-manager, *, /users/:id/requests, ^(GET)$
p, user-manager, *, /users/:id/requests/:request, ^(GET)$
p, user-manager, *, /items/:barcode/requests, ^(GET)$
p, user-administrator, *, /users/:id/requests, ^(GET)$
p, user-administrator, *, /users/:id/requests/:request, ^(GET)$
p, user-administrator, *, /items/:barcode/requests, ^(GET)$
p, auditor, *, /users/:id/requests, ^(GET)$
p, auditor, *, /users/:id/requests/:request, ^(GET)$
p, auditor, *, /items/:barcode/requests, ^(GET)$

# The patron's own account ("My Library Card"): every /me route acts on
# the patron who asks.
p, patron, *, /me, ^(GET)$
p, patron, *, /me/loans, ^(GET)$
p, patron, *, /me/loans/renew, ^(POST)$
p, patron, *, /me/loans/history, ^(GET)$
p, patron, *, /me/requests, ^(GET|POST)$
p, patron, *, /me/requests/:request, ^(GET|DELETE)$
p, patron, *, /me/items/:barcode/queue, ^(GET)$
p, patron, *, /me/items/:barcode/terms, ^(GET)$
p, patron, *, /me/fees, ^(GET)$
p, patron, *, /me/blocks, ^(GET)$
p, patron, *, /me/notices, ^(GET)$
p, patron, *, /me/notices/:notice, ^(GET)$
p, patron, *, /me/settings, ^(GET|PATCH)$
`

// Whose record a legacy route concerns.
const (
	whoseNone  = iota // no user's: a list, a library, an item...
	whoseParam        // the user its :primary_id names
	whoseSelf         // the principal's own account (the /me routes)
)

// legacyRoute is a route the URL policies decided (and the resource the
// API asked about besides a route before it made or changed a STAFF
// record, /users/:primary_id/staff), with the action that decides it now.
type legacyRoute struct {
	method, path, action string
	whose                int
}

var legacyRoutes = []legacyRoute{
	{"GET", "/openapi.json", "openapi.read", whoseNone},
	{"GET", "/users", "users.read", whoseNone},
	{"POST", "/users", "users.create", whoseNone},
	{"GET", "/users/:primary_id", "users.read", whoseParam},
	{"PUT", "/users/:primary_id", "users.write", whoseParam},
	{"DELETE", "/users/:primary_id", "users.delete", whoseParam},
	{"POST", "/users/:primary_id/staff", "users.staff", whoseParam},
	{"PUT", "/users/:primary_id/staff", "users.staff", whoseParam},
	{"GET", "/users/:primary_id/overrides", "users.overrides.read", whoseParam},
	{"POST", "/users/:primary_id/restore-sis-fields", "users.overrides.restore", whoseParam},
	{"POST", "/users/:primary_id/user_identifiers", "users.identifiers", whoseParam},
	{"DELETE", "/users/:primary_id/user_identifiers/:segment_id", "users.identifiers", whoseParam},
	{"POST", "/users/:primary_id/addresses", "users.contacts", whoseParam},
	{"DELETE", "/users/:primary_id/addresses/:segment_id", "users.contacts", whoseParam},
	{"POST", "/users/:primary_id/emails", "users.contacts", whoseParam},
	{"DELETE", "/users/:primary_id/emails/:segment_id", "users.contacts", whoseParam},
	{"POST", "/users/:primary_id/phones", "users.contacts", whoseParam},
	{"DELETE", "/users/:primary_id/phones/:segment_id", "users.contacts", whoseParam},
	{"POST", "/users/:primary_id/user_notes", "users.notes", whoseParam},
	{"DELETE", "/users/:primary_id/user_notes/:segment_id", "users.notes", whoseParam},
	{"POST", "/users/:primary_id/user_blocks", "users.blocks", whoseParam},
	{"DELETE", "/users/:primary_id/user_blocks/:segment_id", "users.blocks", whoseParam},
	{"POST", "/users/:primary_id/user_statistics", "users.statistics", whoseParam},
	{"DELETE", "/users/:primary_id/user_statistics/:segment_id", "users.statistics", whoseParam},
	{"POST", "/users/:primary_id/proxy_for_users", "users.proxies", whoseParam},
	{"DELETE", "/users/:primary_id/proxy_for_users/:segment_id", "users.proxies", whoseParam},
	{"GET", "/users/:primary_id/attachments", "attachments.read", whoseParam},
	{"GET", "/users/:primary_id/attachments/:attachment_id", "attachments.read", whoseParam},
	{"POST", "/users/:primary_id/attachments", "attachments.upload", whoseParam},
	{"DELETE", "/users/:primary_id/attachments/:attachment_id", "attachments.delete", whoseParam},
	{"GET", "/sis/profiles", "sis.profiles.read", whoseNone},
	{"GET", "/sis/profiles/:code", "sis.profiles.read", whoseNone},
	{"POST", "/sis/profiles", "sis.profiles.write", whoseNone},
	{"PUT", "/sis/profiles/:code", "sis.profiles.write", whoseNone},
	{"DELETE", "/sis/profiles/:code", "sis.profiles.write", whoseNone},
	{"POST", "/sis/profiles/:code/runs", "sis.run", whoseNone},
	{"POST", "/sis/profiles/:code/exports", "sis.export", whoseNone},
	{"GET", "/sis/profiles/:code/runs", "sis.reports.read", whoseNone},
	{"GET", "/sis/runs/:run_id", "sis.reports.read", whoseNone},
	{"GET", "/sis/runs/:run_id/report", "sis.reports.read", whoseNone},
	{"GET", "/code-tables", "code_tables.read", whoseNone},
	{"GET", "/code-tables/:table", "code_tables.read", whoseNone},
	{"GET", "/libraries", "libraries.read", whoseNone},
	{"GET", "/libraries/:library", "libraries.read", whoseNone},
	{"POST", "/libraries", "libraries.write", whoseNone},
	{"PUT", "/libraries/:library", "libraries.write", whoseNone},
	{"DELETE", "/libraries/:library", "libraries.write", whoseNone},
	{"GET", "/items", "items.read", whoseNone},
	{"GET", "/items/:barcode", "items.read", whoseNone},
	{"POST", "/items", "items.write", whoseNone},
	{"POST", "/items/bulk", "items.write", whoseNone},
	{"PUT", "/items/:barcode", "items.write", whoseNone},
	{"DELETE", "/items/:barcode", "items.write", whoseNone},
	{"GET", "/terms-of-use", "terms.read", whoseNone},
	{"GET", "/users/:primary_id/terms", "terms.read", whoseParam},
	{"PUT", "/terms-of-use", "terms.write", whoseNone},
	{"GET", "/users/:primary_id/loans", "loans.read", whoseParam},
	{"GET", "/items/:barcode/loans", "loans.read", whoseNone},
	{"GET", "/loans/:loan_id", "loans.read", whoseNone},
	{"POST", "/loans", "loans.checkout", whoseNone},
	{"POST", "/returns", "loans.checkin", whoseNone},
	{"POST", "/loans/:loan_id/renew", "loans.renew", whoseNone},
	{"POST", "/users/:primary_id/loans/renew", "loans.renew", whoseParam},
	{"POST", "/items/:barcode/lost", "loans.lost", whoseNone},
	{"GET", "/users/:primary_id/blocks", "blocks.read", whoseParam},
	{"GET", "/users/:primary_id/fees", "fees.read", whoseParam},
	{"GET", "/users/:primary_id/fees/:fee_id", "fees.read", whoseParam},
	{"POST", "/users/:primary_id/fees", "fees.charge", whoseParam},
	{"POST", "/users/:primary_id/fees/:fee_id/pay", "fees.pay", whoseParam},
	{"POST", "/users/:primary_id/fees/:fee_id/waive", "fees.waive", whoseParam},
	{"GET", "/users/:primary_id/requests", "requests.read", whoseParam},
	{"GET", "/users/:primary_id/requests/:request_id", "requests.read", whoseParam},
	{"GET", "/items/:barcode/requests", "requests.read", whoseNone},
	{"POST", "/users/:primary_id/requests", "requests.place", whoseParam},
	{"DELETE", "/users/:primary_id/requests/:request_id", "requests.cancel", whoseParam},
	{"GET", "/me", "account.read", whoseSelf},
	{"GET", "/me/loans", "account.read", whoseSelf},
	{"GET", "/me/loans/history", "account.read", whoseSelf},
	{"GET", "/me/requests", "account.read", whoseSelf},
	{"GET", "/me/requests/:request_id", "account.read", whoseSelf},
	{"GET", "/me/items/:barcode/queue", "account.read", whoseSelf},
	{"GET", "/me/items/:barcode/terms", "account.read", whoseSelf},
	{"GET", "/me/fees", "account.read", whoseSelf},
	{"GET", "/me/blocks", "account.read", whoseSelf},
	{"GET", "/me/notices", "account.read", whoseSelf},
	{"GET", "/me/notices/:notice_id", "account.read", whoseSelf},
	{"GET", "/me/settings", "account.read", whoseSelf},
	{"POST", "/me/loans/renew", "account.loans.renew", whoseSelf},
	{"POST", "/me/requests", "account.requests.place", whoseSelf},
	{"DELETE", "/me/requests/:request_id", "account.requests.cancel", whoseSelf},
	{"PATCH", "/me/settings", "account.settings.write", whoseSelf},
}

// legacyRules are the p lines of legacyPolicy, without the "p".
func legacyRules() [][]string { return policyLines(legacyPolicy) }

// addLegacyDefaults writes to the policy table the lines of legacyPolicy
// that pick selects and that the table lacks: the migrations of the
// releases that added default permissions on URLs call it, so that a
// database seeded before them gets them once (a line a policy author
// removed afterwards stays removed). The migration to actions then turns
// them into action lines.
func addLegacyDefaults(tx *gorm.DB, pick func(rule []string) bool) error {
	for _, r := range legacyRules() {
		if !pick(r) {
			continue
		}
		if err := addRule(tx, rule{Ptype: "p", V0: r[0], V1: r[1], V2: r[2], V3: r[3]}); err != nil {
			return err
		}
	}
	return nil
}

// addRule writes row unless the table holds it.
func addRule(tx *gorm.DB, row rule) error {
	var n int64
	if err := tx.Table(RuleTable).Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ? AND v3 = ?", row.Ptype, row.V0, row.V1, row.V2, row.V3).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return tx.Table(RuleTable).Create(&row).Error
}

// isURLRule tells whether a p line names a URL path (an earlier release's
// line) rather than an action.
func isURLRule(object string) bool { return strings.HasPrefix(object, "/") }

// pathVariable is a :name segment of a URL policy's path pattern.
var pathVariable = regexp.MustCompile(`:[^/]+`)

// legacyMatches lists the legacy routes (indexes of legacyRoutes) that a
// URL line allowed, as the URL model decided: the route's path matched by
// keyMatch2 against the line's path pattern (":name" one segment, "/*"
// the rest, and the rest a regular expression) and its method by the
// line's method expression. own reports that the line held only on the
// asker's own record (a :self segment). A line whose expressions do not
// compile is an error.
func legacyMatches(pattern, methods string) (matched []int, own bool, err error) {
	p := strings.ReplaceAll(pattern, "/*", "/.*")
	p = "^" + pathVariable.ReplaceAllString(p, "[^/]+") + "$"
	pathRe, err := regexp.Compile(p)
	if err != nil {
		return nil, false, fmt.Errorf("the path pattern %q: %w", pattern, err)
	}
	methodRe, err := regexp.Compile(methods)
	if err != nil {
		return nil, false, fmt.Errorf("the method expression %q: %w", methods, err)
	}
	for i, rt := range legacyRoutes {
		if pathRe.MatchString(rt.path) && methodRe.MatchString(rt.method) {
			matched = append(matched, i)
		}
	}
	return matched, slices.Contains(strings.Split(pattern, "/"), ":self"), nil
}

// grant is an action line: role, library, action, whose.
type grant [4]string

// urlRulesToActions is the migration from URL lines to action lines, on a
// database an earlier release seeded. Each URL line grants its role, in
// its library, the action of every route it allowed ("own" when the line
// held only on the asker's own record, as a patron's /users/:self did, or
// on the patron's own account, the /me routes): the default lines become
// the default policy on actions, and a line a policy author added or
// changed keeps what it allowed (a route granted besides the default
// becomes its action, which may allow the action's other routes too: that
// is logged). A line that allowed no route is logged and dropped. Then the
// URL lines go, and the lines of this release's new actions (roles.read,
// roles.assign) are added.
func urlRulesToActions(tx *gorm.DB) error {
	log := migrate.Logger(tx)
	var rows []rule
	if err := tx.Table(RuleTable).Where("ptype = ?", "p").Order("id").Find(&rows).Error; err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil // a new database: the policy on actions is seeded whole
	}
	type holder struct{ role, library string }
	allowed := map[holder]map[int]bool{}
	var grants []grant
	var urlIDs []uint
	for _, r := range rows {
		if !isURLRule(r.V2) {
			continue
		}
		urlIDs = append(urlIDs, r.ID)
		matched, own, err := legacyMatches(r.V2, r.V3)
		if err == nil && len(matched) == 0 {
			err = fmt.Errorf("it allows no route of the API")
		}
		if err != nil {
			log.Warn("casbinmodel: a policy line on a URL has no action; it is dropped",
				"role", r.V0, "library", r.V1, "path", r.V2, "methods", r.V3, "reason", err.Error())
			continue
		}
		h := holder{r.V0, r.V1}
		if allowed[h] == nil {
			allowed[h] = map[int]bool{}
		}
		for _, i := range matched {
			rt := legacyRoutes[i]
			whose := WhoseAny
			if own || rt.whose == whoseSelf {
				whose = WhoseOwn
			}
			allowed[h][i] = true
			g := grant{r.V0, r.V1, rt.action, whose}
			if !slices.Contains(grants, g) {
				grants = append(grants, g)
			}
		}
	}
	for _, g := range grants {
		if g[3] == WhoseOwn && slices.Contains(grants, grant{g[0], g[1], g[2], WhoseAny}) {
			continue // the line on any record holds on their own too
		}
		// The routes the action decides that the role's lines did not
		// allow: it allows them now.
		var more []string
		for i, rt := range legacyRoutes {
			if rt.action == g[2] && !allowed[holder{g[0], g[1]}][i] && (g[3] == WhoseAny || rt.whose != whoseNone) {
				more = append(more, rt.method+" "+rt.path)
			}
		}
		if len(more) > 0 {
			log.Warn("casbinmodel: a role's policy lines on URLs allowed part of an action; the role now holds the whole action",
				"role", g[0], "library", g[1], "action", g[2], "routes_added", strings.Join(more, ", "))
		}
		if err := addRule(tx, rule{Ptype: "p", V0: g[0], V1: g[1], V2: g[2], V3: g[3]}); err != nil {
			return err
		}
	}
	for _, id := range urlIDs {
		if err := tx.Table(RuleTable).Where("id = ?", id).Delete(&rule{}).Error; err != nil {
			return err
		}
	}
	for _, g := range rolesActionsAdded {
		if err := addRule(tx, rule{Ptype: "p", V0: g[0], V1: g[1], V2: g[2], V3: g[3]}); err != nil {
			return err
		}
	}
	return nil
}

// rolesActionsAdded are the default lines of the actions that came with
// the policy on actions: reading and assigning staff roles.
var rolesActionsAdded = []grant{
	{"user-administrator", "*", "roles.read", WhoseAny},
	{"user-administrator", "*", "roles.assign", WhoseAny},
	{"auditor", "*", "roles.read", WhoseAny},
}
