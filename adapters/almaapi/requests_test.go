package almaapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

// requestList is Alma's list of requests, as a client reads it.
type requestList struct {
	Total    int `json:"total_record_count"`
	Requests []struct {
		RequestID             string `json:"request_id"`
		RequestType           string `json:"request_type"`
		RequestStatus         string `json:"request_status"`
		PlaceInQueue          int    `json:"place_in_queue"`
		PickupLocationLibrary string `json:"pickup_location_library"`
		RequestDate           string `json:"request_date"`
		Title                 string `json:"title"`
		UserPrimaryID         string `json:"user_primary_id"`
	} `json:"user_request"`
}

// A hold placed for an item on loan waits in its queue; a user's requests
// are listed (active or history) and read one by one in Alma's
// user_request shape; a request is cancelled with a reason; refusals
// answer Alma's codes.
func TestRequestsArePlacedListedAndCancelledAsAlmaDoes(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.Terms(t, k, inst, patronkittest.DefaultRule)
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "reader" })
		other := patronkittest.User(t, k, inst)
		it := patronkittest.Item(t, k, inst, func(i *circulation.Item) { i.Barcode, i.Title, i.TitleID = "B-2", "Bananboken", "990006312214702204" })
		patronkittest.Loan(t, k, inst, other, it)

		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?format=json", `{"request_type":"HOLD"}`), http.StatusBadRequest, "401664")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?mms_id=nothing&format=json", `{"request_type":"HOLD"}`), http.StatusBadRequest, "60328")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?mms_id=990006312214702204&format=json", `{"request_type":"DIGITIZATION"}`), http.StatusBadRequest, "401873")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/nobody/requests?mms_id=990006312214702204&format=json", `{"request_type":"HOLD"}`), http.StatusBadRequest, "401861")
		w := want(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?mms_id=990006312214702204&format=json",
			`{"request_type":"HOLD","pickup_location_type":"LIBRARY","pickup_location_library":"`+it.Library+`","last_interest_date":"2026-12-01Z"}`, "Content-Type", "application/json"), http.StatusOK)
		var r map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		id, _ := r["request_id"].(string)
		if id == "" || r["request_status"] != "NOT_STARTED" || r["place_in_queue"] != float64(1) || r["last_interest_date"] != "2026-12-01Z" || r["request_date"] != "2026-09-01Z" {
			t.Fatalf("the request: %s", w.Body)
		}

		var l requestList
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 1 || l.Requests[0].RequestID != id || l.Requests[0].Title != "Bananboken" || l.Requests[0].RequestType != "HOLD" {
			t.Fatalf("the requests (%v): %s", err, w.Body)
		}
		want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests", ""), http.StatusOK)
		want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests/"+id, ""), http.StatusOK)
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests/nothing", ""), http.StatusBadRequest, "401694")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/"+other.PrimaryID+"/requests/"+id, ""), http.StatusBadRequest, "401694")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?status=lost", ""), http.StatusBadRequest, "401666")

		want(t, s.do(http.MethodDelete, "/almaws/v1/users/reader/requests/"+id+"?reason=PatronNotInterested&note=moved", ""), http.StatusNoContent)
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 0 {
			t.Errorf("active after the cancellation: %s", w.Body)
		}
		w = want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?status=history&format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 1 || l.Requests[0].RequestStatus != "HISTORY" {
			t.Errorf("history: %s", w.Body)
		}
		got, err := k.Circulation.Request(t.Context(), inst, "reader", id)
		if err != nil || got.CloseReason != "PatronNotInterested: moved" || got.ClosedBy != "api" {
			t.Errorf("the cancelled request: %+v, %v", got, err)
		}

		sample, err := os.ReadFile(filepath.Join(almaAPIDir(t), "uio_item_requests_response.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(sample, &l); err != nil || l.Total != 1 || l.Requests[0].RequestStatus != "NOT_STARTED" || l.Requests[0].PlaceInQueue != 1 {
			t.Errorf("Alma's sample: %+v, %v", l, err)
		}
	})
}

// Alma's PUT of a request changes what circulation lets a waiting hold
// change: its pickup library and last interest date (a field left out
// stays); refusals (a library the user's group may not pick up at, a date
// passed, a comment, another request type, a request on the hold shelf)
// answer Alma's errors and change nothing; the change is on the trail.
// Holds are placed by item_pid (the item's internal id) too, and a
// request type patronkit does not keep is named in Alma's error.
func TestARequestIsChangedAndPlacedByItemPIDAsAlmaDoes(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		rule := patronkittest.DefaultRule
		rule.Terms.PickupAnyLibrary = true
		patronkittest.Terms(t, k, inst, rule)
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "reader" })
		other := patronkittest.User(t, k, inst)
		it := patronkittest.Item(t, k, inst)
		l := patronkittest.Loan(t, k, inst, other, it)
		if _, err := k.Circulation.CreateLibrary(t.Context(), inst, &circulation.Library{Code: "SCIENCE", Name: "Science Library"}); err != nil {
			t.Fatal(err)
		}

		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?item_pid=nothing&format=json", `{"request_type":"HOLD"}`), http.StatusBadRequest, "60328")
		w := want(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?item_pid="+l.ItemID+"&format=json", `{"request_type":"HOLD"}`), http.StatusOK)
		var r map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r["barcode"] != it.Barcode || r["request_status"] != "NOT_STARTED" {
			t.Fatalf("placed by item_pid (%v): %s", err, w.Body)
		}
		id, _ := r["request_id"].(string)
		path := "/almaws/v1/users/reader/requests/" + id + "?format=json"
		for _, typ := range []string{"DIGITIZATION", "BOOKING", "MOVE", "WORK_ORDER"} {
			msg := almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?item_pid="+l.ItemID+"&format=json", `{"request_type":"`+typ+`"}`), http.StatusBadRequest, "401873")
			if !strings.Contains(msg, typ) {
				t.Errorf("the refusal of %s: %q", typ, msg)
			}
			almaErr(t, s.do(http.MethodPut, path, `{"request_type":"`+typ+`"}`), http.StatusBadRequest, "401873")
		}
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/reader/requests?item_pid="+l.ItemID+"&format=json", `{"request_type":"TELEPORT"}`), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?request_type=TELEPORT&format=json", ""), http.StatusBadRequest, "401666")
		want(t, s.do(http.MethodGet, "/almaws/v1/users/reader/requests?request_type=BOOKING&format=json", ""), http.StatusOK)

		w = want(t, s.do(http.MethodPut, path, `{"pickup_location_type":"LIBRARY","pickup_location_library":"science","last_interest_date":"2026-12-24Z"}`, "Content-Type", "application/json"), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r["pickup_location_library"] != "SCIENCE" || r["pickup_location"] != "Science Library" || r["last_interest_date"] != "2026-12-24Z" {
			t.Fatalf("after the change (%v): %s", err, w.Body)
		}
		w = want(t, s.do(http.MethodPut, "/almaws/v1/users/reader/requests/"+id, `<user_request><last_interest_date></last_interest_date></user_request>`, "Content-Type", "application/xml"), http.StatusOK)
		if strings.Contains(w.Body.String(), "last_interest_date") || !strings.Contains(w.Body.String(), "<pickup_location_library>SCIENCE</pickup_location_library>") {
			t.Errorf("the date taken away, the library kept: %s", w.Body)
		}

		almaErr(t, s.do(http.MethodPut, path, `{"pickup_location_library":"NOWHERE"}`), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPut, path, `{"last_interest_date":"2026-01-01Z"}`), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPut, path, `{"comment":"please hurry"}`), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPut, path, `{"pickup_location_type":"USER_HOME_ADDRESS"}`), http.StatusBadRequest, "60308")
		almaErr(t, s.do(http.MethodPut, path, `{"pickup_location_library":`), http.StatusBadRequest, "401676")
		almaErr(t, s.do(http.MethodPut, "/almaws/v1/users/reader/requests/nothing?format=json", `{"last_interest_date":"2026-12-24Z"}`), http.StatusBadRequest, "401694")
		almaErr(t, s.do(http.MethodPut, "/almaws/v1/users/"+other.PrimaryID+"/requests/"+id+"?format=json", `{"last_interest_date":"2026-12-24Z"}`), http.StatusBadRequest, "401694")
		got, err := k.Circulation.Request(t.Context(), inst, "reader", id)
		if err != nil || got.PickupLibrary != "SCIENCE" || got.NotNeededAfter != "" {
			t.Errorf("after the refusals: %+v, %v", got, err)
		}
		page, err := k.Privacy.Search(t.Context(), inst, privacy.Query{Subject: "reader", Via: "alma-api PUT"})
		if err != nil || !slices.ContainsFunc(page.Entries, func(e privacy.Entry) bool {
			return e.Action == "update" && strings.Contains(e.Details, `"pickup_library":{"new":"SCIENCE","old":"`+it.Library+`"}`)
		}) {
			t.Errorf("the changes on the trail: %+v, %v", page.Entries, err)
		}

		// The item back, on the hold shelf for the reader: it waits there.
		if _, err := k.Circulation.CheckIn(t.Context(), inst, it.Barcode); err != nil {
			t.Fatal(err)
		}
		almaErr(t, s.do(http.MethodPut, path, `{"last_interest_date":"2026-12-24Z"}`), http.StatusBadRequest, "401652")
	})
}
