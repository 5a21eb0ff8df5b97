package almaapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
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
