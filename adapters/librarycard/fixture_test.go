package librarycard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/adapters/librarycard"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

// Institution is the fixture's institution.
const Institution = "UNI"

// semesterEnd is the faculty's fixed due date in the fixture's terms.
const semesterEnd = "2026-12-20"

// library is a kit with demo-like data, its pages mounted at /card of an
// HTTP server:
//   - libraries MAIN and SCIENCE; undergraduates borrow for four weeks
//     and pick requests up at the owning library; faculty borrow to the
//     end of semester, pick up anywhere or have requests delivered for
//     5.00;
//   - student (UNDERGRAD, PIN 3333): an email, an address, no phone; an
//     overdue loan (MAIN-1), a loan (MAIN-2) that faculty requested, a
//     returned loan (MAIN-4), a fee of 2.50, a note for them and one for
//     staff only;
//   - faculty (FACULTY, PIN 4444, Spanish): a loan of MAIN-3, which the
//     student requested, a phone, two addresses.
type library struct {
	t       *testing.T
	k       *patronkittest.Kit
	srv     *httptest.Server
	student *patron.User
	faculty *patron.User
	// studentRequest is the student's request for MAIN-3.
	studentRequest *circulation.Request
	// overdue is the student's overdue loan, renewable is their loan of
	// MAIN-2.
	overdue, requested *circulation.Loan
}

func newLibrary(t *testing.T, k *patronkittest.Kit, opts ...func(*librarycard.Options)) *library {
	t.Helper()
	ctx := context.Background()
	lib := &library{t: t, k: k}
	c := k.Circulation
	for _, l := range []circulation.Library{{Code: "MAIN", Name: "Main Library", TimeZone: "UTC"}, {Code: "SCIENCE", Name: "Science Library", TimeZone: "UTC"}} {
		if _, err := c.CreateLibrary(ctx, Institution, &l); err != nil {
			t.Fatal(err)
		}
	}
	weeks := circulation.Terms{LoanPeriod: 4, LoanPeriodUnit: circulation.Weeks, Renewals: 2, OverdueFine: 25, OverdueFineUnit: circulation.PerDay,
		Currency: "USD", RequestsAllowed: true}
	faculty := weeks
	faculty.LoanPeriod, faculty.LoanPeriodUnit, faculty.FixedDueDate = 0, "", semesterEnd
	faculty.PickupAnyLibrary, faculty.PersonalDelivery, faculty.DeliveryFee = true, true, 500
	patronkittest.Terms(t, k, Institution,
		circulation.Rule{Name: "Faculty: end of semester", UserGroup: "FACULTY", Terms: faculty},
		circulation.Rule{Name: "Everyone: four weeks", Terms: weeks})
	titles := []string{"The Origin of Species", "Middlemarch", "Cosmos", "Silent Spring", "The Selfish Gene", "A Brief History of Time"}
	for i, title := range titles {
		patronkittest.Item(t, k, Institution, func(it *circulation.Item) {
			it.Barcode, it.Title, it.Author = "MAIN-"+string(rune('1'+i)), title, "Author "+string(rune('A'+i))
		})
	}
	lib.student = patronkittest.User(t, k, Institution, func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName, u.UserGroup, u.PINNumber, u.PreferredLanguage = "student1", "Sam", "Student", "UNDERGRAD", "3333", "en"
		u.ExpiryDate = "2027-08-31"
		u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "S-2001"}}
		u.Emails = []patron.Email{{EmailAddress: "sam@example.edu", Preferred: true}}
		u.Addresses = []patron.Address{{Line1: "1 College Road", City: "Springfield", Preferred: true}}
		u.Notes = []patron.Note{{NoteText: "Welcome to the library, Sam.", UserViewable: true}, {NoteText: "Staff only: check ID next time"}}
	})
	lib.faculty = patronkittest.User(t, k, Institution, func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName, u.UserGroup, u.PINNumber, u.PreferredLanguage = "faculty1", "Frances", "Faculty", "FACULTY", "4444", "es"
		u.Phones = []patron.Phone{{PhoneNumber: "+1 555 0100", Preferred: true}}
		u.Addresses = []patron.Address{{Line1: "9 Faculty Row", City: "Springfield", Preferred: true}, {Line1: "Office 12, Science Hall", City: "Springfield"}}
	})
	item := func(b string) *circulation.Item {
		it, err := c.Item(ctx, Institution, b)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	// The overdue loan was made five weeks ago; the returned one, six.
	k.Clock.Set(patronkittest.Start.Add(-6 * 7 * 24 * time.Hour))
	patronkittest.Loan(t, k, Institution, lib.student, item("MAIN-4"))
	if _, err := c.CheckIn(ctx, Institution, "MAIN-4"); err != nil {
		t.Fatal(err)
	}
	k.Clock.Set(patronkittest.Start.Add(-5 * 7 * 24 * time.Hour))
	lib.overdue = patronkittest.Loan(t, k, Institution, lib.student, item("MAIN-1"))
	k.Clock.Set(patronkittest.Start)
	lib.requested = patronkittest.Loan(t, k, Institution, lib.student, item("MAIN-2"))
	patronkittest.Loan(t, k, Institution, lib.faculty, item("MAIN-3"))
	if _, err := c.PlaceRequest(ctx, Institution, lib.faculty.PrimaryID, circulation.NewRequest{Barcode: "MAIN-2"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.PlaceRequest(ctx, Institution, lib.student.PrimaryID, circulation.NewRequest{Barcode: "MAIN-3"})
	if err != nil {
		t.Fatal(err)
	}
	lib.studentRequest = r
	if _, err := c.AddFee(ctx, Institution, lib.student.PrimaryID, circulation.NewFee{Amount: 250, Currency: "USD", Description: "Replacement card"}); err != nil {
		t.Fatal(err)
	}

	gin.SetMode(gin.TestMode)
	e := gin.New()
	o := &librarycard.Options{Institution: Institution, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	for _, f := range opts {
		f(o)
	}
	if err := librarycard.Mount(e.Group("/card"), k.Kit, o); err != nil {
		t.Fatal(err)
	}
	lib.srv = httptest.NewServer(e)
	t.Cleanup(lib.srv.Close)
	return lib
}

// visitor is one browser's worth of HTTP: its own cookies, the last page
// it was shown.
type visitor struct {
	t    *testing.T
	lib  *library
	c    *http.Client
	res  *http.Response
	body string
}

func (l *library) visitor() *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: l.t, lib: l, c: &http.Client{Jar: jar}}
}

func (v *visitor) do(req *http.Request) *visitor {
	v.t.Helper()
	res, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	v.res, v.body = res, string(b)
	return v
}

// get shows a page below the server (redirects followed).
func (v *visitor) get(path string) *visitor {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.lib.srv.URL+path, nil)
	return v.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends a form with the CSRF token of the page last shown (unless
// the form has one), as the browser would.
func (v *visitor) post(path string, form url.Values, headers ...string) *visitor {
	v.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		if m := csrfField.FindStringSubmatch(v.body); m != nil {
			form.Set("csrf", m[1])
		}
	}
	req, _ := http.NewRequest(http.MethodPost, v.lib.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return v.do(req)
}

// signIn signs in with primary_id and PIN from the sign-in page.
func (v *visitor) signIn(id, pin string) *visitor {
	v.t.Helper()
	v.get("/card/signin")
	return v.post("/card/signin", url.Values{"primary_id": {id}, "pin": {pin}})
}

// status fails the test unless the last answer had the status.
func (v *visitor) status(want int) *visitor {
	v.t.Helper()
	if v.res.StatusCode != want {
		v.t.Fatalf("%s %s: status %d, want %d: %.2000s", v.res.Request.Method, v.res.Request.URL.Path, v.res.StatusCode, want, v.body)
	}
	return v
}

// at fails the test unless the last page shown is path.
func (v *visitor) at(path string) *visitor {
	v.t.Helper()
	if v.res.Request.URL.Path != path {
		v.t.Fatalf("at %s, want %s", v.res.Request.URL.Path, path)
	}
	return v
}

// has fails the test unless the last page holds every text.
func (v *visitor) has(texts ...string) *visitor {
	v.t.Helper()
	for _, s := range texts {
		if !strings.Contains(v.body, s) {
			v.t.Fatalf("%s: the page lacks %q:\n%.4000s", v.res.Request.URL.Path, s, v.body)
		}
	}
	return v
}

// lacks fails the test when the last page holds any of the texts.
func (v *visitor) lacks(texts ...string) *visitor {
	v.t.Helper()
	for _, s := range texts {
		if strings.Contains(v.body, s) {
			v.t.Fatalf("%s: the page holds %q", v.res.Request.URL.Path, s)
		}
	}
	return v
}

var deliveryValue = regexp.MustCompile(`value="(delivery:[^"]+)"`)

// deliveryChoice is the first delivery choice of the request form shown.
func (v *visitor) deliveryChoice() string {
	v.t.Helper()
	m := deliveryValue.FindStringSubmatch(v.body)
	if m == nil {
		v.t.Fatalf("the page offers no delivery:\n%.3000s", v.body)
	}
	return m[1]
}

func blockOf(desc string) patron.Block {
	return patron.Block{BlockType: "GENERAL", BlockDescription: desc, BlockStatus: "ACTIVE"}
}

// testWriter writes the pages' log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
