package ginapi_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/ginapi"
	"github.com/patronkit/patronkit/casbinmodel"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
)

// principals of the access matrix. The routes that name a user name
// student1.
var principals = map[string]string{
	"admin":   "DEMO/librarian/staff",  // user-administrator in every library
	"desk":    "DEMO/desk/staff",       // circulation-desk-operator at MAIN
	"manager": "DEMO/manager/staff",    // user-manager at SCIENCE
	"fulfil":  "DEMO/fulfil/staff",     // fulfillment-administrator everywhere
	"auditor": "DEMO/auditor/staff",    // auditor everywhere
	"noroles": "DEMO/temp/staff",       // staff with no role
	"self":    "DEMO/student1/patron",  // the patron the routes name
	"patron":  "DEMO/faculty1/patron",  // another patron
	"foreign": "OTHER/librarian/staff", // user- and fulfillment-administrator of another institution
}

// allowed is the expected decision for every route the router registers:
// the principals (besides "foreign", checked apart) that pass access control.
var allowed = map[string]string{
	"GET /api/openapi.json":                "admin desk manager fulfil auditor self patron",
	"GET /api/users":                       "admin desk manager fulfil auditor",
	"POST /api/users":                      "admin desk manager",
	"GET /api/users/:primary_id":           "admin desk manager fulfil auditor self",
	"PUT /api/users/:primary_id":           "admin manager",
	"DELETE /api/users/:primary_id":        "admin",
	"GET /api/users/:primary_id/overrides": "admin manager auditor",

	"GET /api/users/:primary_id/legal-hold":    "admin auditor",
	"PUT /api/users/:primary_id/legal-hold":    "admin",
	"DELETE /api/users/:primary_id/legal-hold": "admin",
	"POST /api/users/:primary_id/erasure":      "admin",

	"GET /api/users/:primary_id/personal-data": "admin auditor",

	"GET /api/users/:primary_id/attachments":                   "admin desk manager auditor",
	"POST /api/users/:primary_id/attachments":                  "admin desk manager",
	"GET /api/users/:primary_id/attachments/:attachment_id":    "admin desk manager auditor",
	"DELETE /api/users/:primary_id/attachments/:attachment_id": "admin manager",

	"GET /api/users/:primary_id/user_roles": "admin auditor",
	"PUT /api/users/:primary_id/user_roles": "admin",

	"GET /api/sis/profiles":                          "admin manager auditor",
	"POST /api/sis/profiles":                         "admin",
	"GET /api/sis/profiles/:code":                    "admin manager auditor",
	"PUT /api/sis/profiles/:code":                    "admin",
	"DELETE /api/sis/profiles/:code":                 "admin",
	"GET /api/sis/profiles/:code/runs":               "admin manager auditor",
	"POST /api/sis/profiles/:code/runs":              "admin manager",
	"POST /api/sis/profiles/:code/exports":           "admin manager",
	"GET /api/sis/runs/:run_id":                      "admin manager auditor",
	"GET /api/sis/runs/:run_id/report":               "admin manager auditor",
	"POST /api/users/:primary_id/restore-sis-fields": "admin manager",
	"GET /api/code-tables":                           "admin desk manager fulfil auditor self patron",
	"GET /api/code-tables/:table":                    "admin desk manager fulfil auditor self patron",

	"GET /api/libraries":               "admin desk manager fulfil auditor",
	"POST /api/libraries":              "fulfil",
	"GET /api/libraries/:library":      "admin desk manager fulfil auditor",
	"PUT /api/libraries/:library":      "fulfil",
	"DELETE /api/libraries/:library":   "fulfil",
	"GET /api/items":                   "admin desk manager fulfil auditor",
	"POST /api/items":                  "fulfil",
	"POST /api/items/bulk":             "fulfil",
	"GET /api/items/:barcode":          "admin desk manager fulfil auditor",
	"PUT /api/items/:barcode":          "fulfil",
	"DELETE /api/items/:barcode":       "fulfil",
	"GET /api/terms-of-use":            "admin desk manager fulfil auditor",
	"PUT /api/terms-of-use":            "fulfil",
	"GET /api/users/:primary_id/terms": "admin desk manager fulfil auditor",

	"POST /api/loans":                         "desk fulfil",
	"POST /api/loans/:loan_id/renew":          "desk fulfil",
	"POST /api/users/:primary_id/loans/renew": "desk fulfil",
	"POST /api/returns":                       "desk fulfil",
	"GET /api/users/:primary_id/loans":        "admin desk manager fulfil auditor",
	"GET /api/items/:barcode/loans":           "admin desk manager fulfil auditor",
	"GET /api/loans/:loan_id":                 "admin desk manager fulfil auditor",
	"POST /api/items/:barcode/lost":           "desk fulfil",
	"GET /api/users/:primary_id/blocks":       "admin desk manager fulfil auditor",

	"GET /api/users/:primary_id/fees":                "admin desk manager fulfil auditor",
	"POST /api/users/:primary_id/fees":               "desk fulfil",
	"GET /api/users/:primary_id/fees/:fee_id":        "admin desk manager fulfil auditor",
	"POST /api/users/:primary_id/fees/:fee_id/pay":   "desk fulfil",
	"POST /api/users/:primary_id/fees/:fee_id/waive": "fulfil",

	"GET /api/users/:primary_id/requests":                "admin desk manager fulfil auditor",
	"POST /api/users/:primary_id/requests":               "desk fulfil",
	"GET /api/users/:primary_id/requests/:request_id":    "admin desk manager fulfil auditor",
	"DELETE /api/users/:primary_id/requests/:request_id": "desk fulfil",
	"GET /api/items/:barcode/requests":                   "admin desk manager fulfil auditor",

	"GET /api/me":                         "self patron",
	"GET /api/me/loans":                   "self patron",
	"POST /api/me/loans/renew":            "self patron",
	"GET /api/me/loans/history":           "self patron",
	"GET /api/me/requests":                "self patron",
	"POST /api/me/requests":               "self patron",
	"GET /api/me/requests/:request_id":    "self patron",
	"DELETE /api/me/requests/:request_id": "self patron",
	"GET /api/me/items/:barcode/queue":    "self patron",
	"GET /api/me/items/:barcode/terms":    "self patron",
	"GET /api/me/fees":                    "self patron",
	"GET /api/me/blocks":                  "self patron",
	"GET /api/me/notices":                 "self patron",
	"GET /api/me/notices/:notice_id":      "self patron",
	"GET /api/me/settings":                "self patron",
	"GET /api/me/personal-data":           "self patron",
	"GET /api/me/access-log":              "self patron",

	"GET /api/audit/entries": "auditor",
	"GET /api/audit/verify":  "auditor",
	"PATCH /api/me/settings": "self patron",

	"GET /api/privacy/retention":                   "admin",
	"POST /api/privacy/anonymization-runs":         "admin",
	"GET /api/privacy/anonymization-runs/:run_id":  "admin",
	"POST /api/privacy/purge-runs":                 "admin",
	"GET /api/privacy/purge-runs/:run_id":          "admin",
	"GET /api/privacy/purge-runs/:run_id/outcomes": "admin",
	"POST /api/privacy/purge-runs/:run_id/cancel":  "admin",

	"POST /api/sets":                "admin",
	"GET /api/sets":                 "admin",
	"GET /api/sets/:set_id":         "admin",
	"GET /api/sets/:set_id/members": "admin",
	"POST /api/sets/:set_id/freeze": "admin",
	"DELETE /api/sets/:set_id":      "admin",

	"POST /api/sets/:set_id/preview": "admin",
	"POST /api/sets/:set_id/jobs":    "admin",
	"GET /api/jobs/:job_id":          "admin",
	"GET /api/jobs/:job_id/outcomes": "admin",
	"POST /api/jobs/:job_id/cancel":  "admin",
	"POST /api/jobs/:job_id/undo":    "admin",

	"POST /api/api-keys":                "admin",
	"GET /api/api-keys":                 "admin",
	"DELETE /api/api-keys/:key_id":      "admin",
	"POST /api/me/loans/history/delete": "self patron",
}

func init() {
	for _, kind := range patron.SegmentKinds {
		who := "admin manager"
		if kind == patron.KindNotes || kind == patron.KindBlocks {
			who = "admin desk manager"
		}
		allowed["POST /api/users/:primary_id/"+kind] = who
		allowed["DELETE /api/users/:primary_id/"+kind+"/:segment_id"] = who
	}
}

// demoRun is the id of a run of DEMO's profile SIS, for the routes that
// name a run.
var demoRun string

// demoLoan is the id of an open loan of DEMO's, for the routes that name a
// loan.
var demoLoan = "no-such-loan"

// demoRequest is the id of a request of DEMO's (faculty1's, not the
// patron the routes name), for the routes that name a request.
var demoRequest = "no-such-request"

func concrete(path string) string {
	path = strings.ReplaceAll(path, ":primary_id", "student1")
	path = strings.ReplaceAll(path, ":code", "SIS")
	path = strings.ReplaceAll(path, ":library", "SCIENCE")
	path = strings.ReplaceAll(path, ":barcode", "MAIN-0001")
	path = strings.ReplaceAll(path, ":table", "user_group")
	path = strings.ReplaceAll(path, ":run_id", demoRun)
	path = strings.ReplaceAll(path, ":attachment_id", "no-such-attachment")
	path = strings.ReplaceAll(path, ":loan_id", demoLoan)
	path = strings.ReplaceAll(path, ":fee_id", "no-such-fee")
	path = strings.ReplaceAll(path, ":request_id", demoRequest)
	path = strings.ReplaceAll(path, ":notice_id", "no-such-notice")
	path = strings.ReplaceAll(path, ":set_id", "no-such-set")
	path = strings.ReplaceAll(path, ":job_id", "no-such-job")
	return strings.ReplaceAll(path, ":segment_id", "no-such-segment")
}

func TestEveryRouteIsDecidedForEveryRole(t *testing.T) {
	s := newServer(t, nil, nil)
	s.grant("DEMO", "librarian", "user-administrator", "*")
	s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
	s.grant("DEMO", "manager", "user-manager", "SCIENCE")
	s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
	s.grant("DEMO", "auditor", "auditor", "*")
	s.grant("OTHER", "librarian", "user-administrator", "*")
	// Every route passes access control for the foreign administrator, so
	// that each one is shown to find nothing of DEMO's.
	s.grant("OTHER", "librarian", "fulfillment-administrator", "*")
	s.grant("OTHER", "librarian", "auditor", "*")
	// DEMO's libraries and items, for the routes that name them; the items
	// are at MAIN, where the desk operator's role holds.
	ctx := context.Background()
	for _, code := range []string{"MAIN", "SCIENCE"} {
		if _, err := s.kit.Circulation.CreateLibrary(ctx, "DEMO", &circulation.Library{Code: code, Name: "DEMO's library " + code}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.kit.Circulation.CreateItem(ctx, "DEMO", &circulation.Item{Barcode: "MAIN-0001", Title: "DEMO's demo title", Library: "MAIN"}); err != nil {
		t.Fatal(err)
	}
	s.create("DEMO", &patron.User{PrimaryID: "faculty1", FirstName: "F", LastName: "F"})
	// An open loan of DEMO's (faculty1's, who stays in place), for the
	// routes that name a loan.
	if _, err := s.kit.Circulation.CreateItem(ctx, "DEMO", &circulation.Item{Barcode: "MAIN-0002", Title: "DEMO's demo title", Library: "MAIN"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.kit.Circulation.ReplaceRules(ctx, "DEMO", 0, []circulation.Rule{{Terms: circulation.Terms{LoanPeriod: 3, LoanPeriodUnit: "weeks", Renewals: 1, RequestsAllowed: true}}}, nil); err != nil {
		t.Fatal(err)
	}
	loan, err := s.kit.Circulation.CheckOut(ctx, "DEMO", "faculty1", "MAIN-0002", circulation.CheckOutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	demoLoan = loan.ID
	req, err := s.kit.Circulation.PlaceRequest(ctx, "DEMO", "faculty1", circulation.NewRequest{Barcode: "MAIN-0001"})
	if err != nil {
		t.Fatal(err)
	}
	demoRequest = req.ID
	demoRun = s.sisRun("DEMO", "SIS", `<users><user><primary_id>sis1</primary_id><first_name>S</first_name><last_name>S</last_name>`+
		`<user_group desc="Demo undergraduates">UG</user_group></user></users>`)

	// The routes are those of the route table (and HEAD on each GET
	// route), which must be exactly what the router registers besides the
	// fallbacks (404, 405, OPTIONS: routes_test.go checks them, and that
	// they come after authentication, below).
	all := s.r.Routes()
	registered := map[string]bool{}
	for _, rt := range all {
		if !isFallback(rt) {
			registered[rt.Method+" "+rt.Path] = true
		}
	}
	var routes gin.RoutesInfo
	for _, rt := range ginapi.Routes() {
		if !casbinmodel.IsAction(rt.Action) {
			t.Errorf("route %s %s asks for %q, which is no action", rt.Method, rt.Path, rt.Action)
		}
		routes = append(routes, gin.RouteInfo{Method: rt.Method, Path: "/api" + rt.Path})
		if rt.Method == http.MethodGet {
			routes = append(routes, gin.RouteInfo{Method: http.MethodHead, Path: "/api" + rt.Path})
		}
	}
	for _, rt := range routes {
		if !registered[rt.Method+" "+rt.Path] {
			t.Errorf("the route table has %s %s, which the router does not register", rt.Method, rt.Path)
		}
		delete(registered, rt.Method+" "+rt.Path)
	}
	for k := range registered {
		t.Errorf("the router registers %s, which the route table does not have", k)
	}
	sort.Slice(routes, func(i, j int) bool { // deletions last
		return (routes[i].Method == http.MethodDelete) == (routes[j].Method == http.MethodDelete) && routes[i].Path < routes[j].Path ||
			routes[i].Method != http.MethodDelete && routes[j].Method == http.MethodDelete
	})
	seen := map[string]bool{}
	for _, rt := range routes {
		key, row := rt.Method+" "+rt.Path, rt.Method+" "+rt.Path
		if rt.Method == http.MethodHead {
			row = "GET " + rt.Path // HEAD is decided as GET
		}
		want, ok := allowed[row]
		if !ok {
			t.Errorf("route %s has no row in the access table", key)
			continue
		}
		seen[row] = true
		for name, who := range principals {
			// Each request finds student1 in place, so allowed requests
			// reach the handler and are judged by it, not by access control.
			s.db.Exec("DELETE FROM pk_users WHERE primary_id = 'student1'")
			s.create("DEMO", &patron.User{PrimaryID: "student1", FirstName: "S", LastName: "S"})
			body, headers := `{}`, []string{"If-Match", `"1"`}
			if rt.Method == http.MethodPost && strings.HasSuffix(rt.Path, "/attachments") {
				// An upload is multipart: the least body the route takes.
				var ctype string
				body, ctype = uploadBody(t, "form.txt", "text/plain", []byte("signed"))
				headers = append(headers, "Content-Type", ctype)
			}
			if name == "foreign" && strings.HasPrefix(rt.Path, "/api/me") {
				// The patron's own routes: a patron of another institution
				// with the primary_id of DEMO's student1.
				who = "OTHER/student1/patron"
			}
			res := s.do(who, rt.Method, concrete(rt.Path), body, headers...)
			if res.Code == http.StatusUnauthorized || res.Code >= 500 {
				t.Errorf("%s as %s: status %d: %s", key, name, res.Code, res.Body.String())
				continue
			}
			denied := res.Code == http.StatusForbidden
			if name == "foreign" {
				// Another institution's administrator passes access control
				// but finds nothing of DEMO's.
				if denied {
					t.Errorf("%s as %s: denied; want the data layer to answer", key, name)
				}
				if strings.ContainsAny(rt.Path, ":") && res.Code != http.StatusNotFound {
					t.Errorf("%s as %s: status %d, want 404: DEMO's user must not be reachable", key, name, res.Code)
				}
				if res.Code < 300 && (strings.Contains(res.Body.String(), "student1") || strings.Contains(res.Body.String(), "Demo undergraduates") ||
					strings.Contains(res.Body.String(), "DEMO's library") || strings.Contains(res.Body.String(), "DEMO's demo title")) {
					t.Errorf("%s as %s: DEMO's data leaked: %s", key, name, res.Body.String())
				}
				continue
			}
			if wantAllowed := strings.Contains(" "+want+" ", " "+name+" "); wantAllowed == denied {
				t.Errorf("%s as %s: status %d, allowed=%v in the table", key, name, res.Code, wantAllowed)
			}
		}
	}
	for key := range allowed {
		if !seen[key] {
			t.Errorf("the access table names %s, which the route table does not have", key)
		}
	}
	// No principal at all: 401 on every route, and on every fallback.
	for _, rt := range all {
		if res := s.do("", rt.Method, concrete(rt.Path), nil); res.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without a principal: %d", rt.Method, rt.Path, res.Code)
		}
	}
}

// POLICIES.md, the policy author's guide, names for every action the
// routes of the route table that ask for it, and no other.
func TestPOLICIESNamesTheRoutesOfEachAction(t *testing.T) {
	doc, err := os.ReadFile("../../casbinmodel/POLICIES.md")
	if err != nil {
		t.Fatal(err)
	}
	_, actions, _ := strings.Cut(string(doc), "\n## Actions\n")
	actions, _, _ = strings.Cut(actions, "\n## ")
	documented := map[string][]string{}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|[^|]*\\|([^|]*)\\|$")
	route := regexp.MustCompile("`((?:GET|POST|PUT|PATCH|DELETE) /[^`]*)`")
	for _, m := range row.FindAllStringSubmatch(actions, -1) {
		documented[m[1]] = []string{}
		for _, r := range route.FindAllStringSubmatch(m[2], -1) {
			documented[m[1]] = append(documented[m[1]], r[1])
		}
	}
	want := map[string][]string{}
	for _, rt := range ginapi.Routes() {
		want[rt.Action] = append(want[rt.Action], rt.Method+" "+oaOpenAPIPath(rt.Path))
	}
	for _, a := range casbinmodel.Actions() {
		got, ok := documented[a.Name]
		slices.Sort(got)
		slices.Sort(want[a.Name])
		if !ok || !slices.Equal(got, want[a.Name]) {
			t.Errorf("POLICIES.md: %s is asked by %v; it says %v", a.Name, want[a.Name], got)
		}
	}
}
