package ginapi_test

import (
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
)

// Staff place and cancel requests where their roles hold, as they lend:
// in the request's pickup library or in the library of its item (for a
// title, of an item of the title). A desk operator at MAIN has no part in
// a request for a SCIENCE item picked up at SCIENCE.
func TestRequestActionsFollowTheLibraryScope(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := &testClock{now: testNow}
		s := newServer(t, db, &patronkit.Config{Now: clock.Now})
		s.grant("DEMO", "fulfil", "fulfillment-administrator", "*")
		s.grant("DEMO", "desk", "circulation-desk-operator", "MAIN")
		circLibraries(t, s)
		s.do(fulfil, "PUT", "/api/terms-of-use", meRules, "If-Match", `"0"`).status(http.StatusOK)
		for _, it := range [][3]string{{"MAIN-0001", "MAIN", "T-MAIN"}, {"SCI-0001", "SCIENCE", "T-SCI"}, {"SCI-0002", "SCIENCE", "T-SCI2"}} {
			s.do(fulfil, "POST", "/api/items", map[string]any{"barcode": it[0], "title": "Book " + it[0], "library": it[1], "title_id": it[2]}).
				status(http.StatusCreated)
		}
		for _, id := range []string{"faculty1", "faculty2", "faculty3"} {
			s.create("DEMO", &patron.User{PrimaryID: id, FirstName: "F", LastName: "F", UserGroup: "FACULTY"})
		}
		place := func(who, user string, body map[string]any) response {
			return s.do(who, "POST", "/api/users/"+user+"/requests", body)
		}
		forbidden := func(res response, name string) {
			t.Helper()
			res.refused(t, name, http.StatusForbidden, "")
			if res.Code == http.StatusForbidden && !strings.Contains(res.problem().Detail, "SCIENCE") {
				t.Errorf("%s: the problem does not name the library: %s", name, res.Body.String())
			}
		}

		// A SCIENCE item picked up at SCIENCE: not the MAIN desk's.
		var sci circulation.Request
		place(fulfil, "faculty1", map[string]any{"barcode": "SCI-0001", "pickup_library": "SCIENCE"}).status(http.StatusCreated).json(&sci)
		forbidden(s.do(deskStaff, "DELETE", "/api/users/faculty1/requests/"+sci.ID+"?reason=no", nil), "the MAIN desk cancelling a SCIENCE request")
		forbidden(place(deskStaff, "faculty2", map[string]any{"barcode": "SCI-0001", "pickup_library": "science"}), "the MAIN desk placing a SCIENCE request")
		forbidden(place(deskStaff, "faculty2", map[string]any{"barcode": "SCI-0001"}), "the MAIN desk placing a SCIENCE request picked up where the item is")
		forbidden(place(deskStaff, "faculty2", map[string]any{"title_id": "T-SCI2", "pickup_library": "SCIENCE"}), "the MAIN desk placing a SCIENCE title request")
		var got circulation.Request
		s.do(fulfil, "GET", "/api/users/faculty1/requests/"+sci.ID, nil).status(http.StatusOK).json(&got)
		if got.Status != circulation.RequestOnHoldShelf || got.Version != sci.Version {
			t.Fatalf("a refused cancellation changed the request: %+v", got)
		}
		var reqs requestList
		s.do(fulfil, "GET", "/api/users/faculty2/requests", nil).status(http.StatusOK).json(&reqs)
		if reqs.Total != 0 {
			t.Fatalf("refused placements placed %d requests", reqs.Total)
		}

		// A SCIENCE item picked up at MAIN, and a MAIN item: the MAIN
		// desk's to place and to cancel.
		var toMain, mainItem circulation.Request
		place(deskStaff, "faculty2", map[string]any{"barcode": "SCI-0001", "pickup_library": "MAIN"}).status(http.StatusCreated).json(&toMain)
		place(deskStaff, "faculty3", map[string]any{"barcode": "MAIN-0001"}).status(http.StatusCreated).json(&mainItem)
		s.do(deskStaff, "DELETE", "/api/users/faculty2/requests/"+toMain.ID+"?reason=changed+mind", nil).status(http.StatusOK)
		s.do(deskStaff, "DELETE", "/api/users/faculty3/requests/"+mainItem.ID+"?reason=changed+mind", nil).status(http.StatusOK)
		// A role in every library cancels anywhere.
		s.do(fulfil, "DELETE", "/api/users/faculty1/requests/"+sci.ID+"?reason=withdrawn", nil).status(http.StatusOK)
	})
}

// requestList is what the routes that list requests answer.
type requestList struct {
	Requests []circulation.Request `json:"requests"`
	Total    int                   `json:"total_record_count"`
}
