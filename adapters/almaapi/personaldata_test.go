package almaapi_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// A user's personal data is one document, in JSON as the native API
// writes it and in XML, its export on the audit trail through the Alma
// API; it needs users.personal_data.
func TestPersonalDataIsOneDocumentInJSONAndXML(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) {
			u.PrimaryID, u.Emails = "subject", []patron.Email{{EmailAddress: "subject@example.org"}}
		})
		w := want(t, s.do(http.MethodGet, "/almaws/v1/users/subject/personal-data?format=json", ""), http.StatusOK)
		var doc struct {
			User struct {
				PrimaryID string `json:"primary_id"`
			} `json:"user"`
			Loans []any `json:"loans"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.User.PrimaryID != "subject" || doc.Loans == nil {
			t.Fatalf("the document (%v): %s", err, w.Body)
		}
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/subject/personal-data", ""), http.StatusOK)
		var x struct {
			XMLName xml.Name `xml:"personal_data"`
			User    struct {
				PrimaryID string `xml:"primary_id"`
				Emails    []struct {
					Address string `xml:"email_address"`
				} `xml:"emails"`
			} `xml:"user"`
		}
		if err := xml.Unmarshal(w.Body.Bytes(), &x); err != nil || x.User.PrimaryID != "subject" || len(x.User.Emails) != 1 || x.User.Emails[0].Address != "subject@example.org" {
			t.Fatalf("the document in XML (%v): %s", err, w.Body)
		}
		page, err := k.Privacy.Search(t.Context(), inst, privacy.Query{Subject: "subject", Action: patron.AuditExport})
		if err != nil || len(page.Entries) != 2 || !strings.HasPrefix(page.Entries[0].Via, "alma-api GET /almaws/v1/users/:user_id/personal-data key ") {
			t.Errorf("the exports on the trail (%v): %+v", err, page)
		}
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/nobody/personal-data", ""), http.StatusBadRequest, "401861")

		// A fulfillment administrator alone may not.
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID, u.RecordType = "ful", patron.RecordStaff })
		if err := k.Access.AssignRole(t.Context(), inst, "ful", "fulfillment-administrator", "*"); err != nil {
			t.Fatal(err)
		}
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/subject/personal-data", "", "Authorization", "apikey "+s.makeKey("ful", "ful", false)), http.StatusUnauthorized, "UNAUTHORIZED")
	})
}
