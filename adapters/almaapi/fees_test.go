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

// feeList is Alma's list of fees, as a client reads it.
type feeList struct {
	Total    int     `json:"total_record_count"`
	TotalSum float64 `json:"total_sum"`
	Currency string  `json:"currency"`
	Fees     []struct {
		ID   string `json:"id"`
		Type struct {
			Value string `json:"value"`
		} `json:"type"`
		Status struct {
			Value string `json:"value"`
		} `json:"status"`
		Balance        float64 `json:"balance"`
		OriginalAmount float64 `json:"original_amount"`
		Link           string  `json:"link"`
	} `json:"fee"`
}

// A manual fee is charged in the library's currency; a user's fees are
// listed with their sum, read one by one, paid in part with the payment's
// method, comment and external id kept, waived, and all paid at once; the
// refusals answer Alma's codes.
func TestFeesAreChargedPaidWaivedAndPaidAllAsAlmaDoes(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		s := newServer(t, k)
		patronkittest.User(t, k, inst, func(u *patron.User) { u.PrimaryID = "owes" })
		type fee struct {
			ID      string  `json:"id"`
			Balance float64 `json:"balance"`
			Status  struct {
				Value string `json:"value"`
			} `json:"status"`
		}
		charge := func(body string, headers ...string) fee {
			t.Helper()
			var f fee
			w := want(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees?format=json", body, headers...), http.StatusOK)
			if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || f.ID == "" {
				t.Fatalf("the fee (%v): %s", err, w.Body)
			}
			return f
		}
		f1 := charge(`{"type":{"value":"OTHER"},"original_amount":12.5,"comment":"Damaged cover"}`, "Content-Type", "application/json")
		f2 := charge(`<fee><type>OTHER</type><original_amount>3.00</original_amount><comment>Card</comment></fee>`, "Content-Type", "application/xml")
		if f1.Balance != 12.5 || f1.Status.Value != "ACTIVE" || f2.Balance != 3 {
			t.Fatalf("the fees charged: %+v %+v", f1, f2)
		}
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees?format=json", `{"original_amount":1}`), http.StatusBadRequest, "4019991")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees?format=json", `{"type":{"value":"OVERDUEFINE"},"original_amount":1}`), http.StatusBadRequest, "4019992")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees?format=json", `{"type":{"value":"OTHER"}}`), http.StatusBadRequest, "4019994")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees?format=json", `{"type":{"value":"OTHER"},"original_amount":1.234}`), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/nobody/fees?format=json", `{"type":{"value":"OTHER"},"original_amount":1}`), http.StatusBadRequest, "401861")

		var l feeList
		w := want(t, s.do(http.MethodGet, "/almaws/v1/users/owes/fees?format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 2 || l.TotalSum != 15.5 || l.Currency != "USD" || l.Fees[0].Type.Value != "OTHER" || l.Fees[0].Link == "" {
			t.Fatalf("the fees (%v): %s", err, w.Body)
		}
		want(t, s.do(http.MethodGet, "/almaws/v1/users/owes/fees", ""), http.StatusOK)
		want(t, s.do(http.MethodGet, "/almaws/v1/users/owes/fees/"+f1.ID, ""), http.StatusOK)
		almaErr(t, s.do(http.MethodGet, "/almaws/v1/users/owes/fees/nothing", ""), http.StatusBadRequest, "401665")

		var f fee
		w = want(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f1.ID+"?op=pay&amount=2.50&method=CASH&comment=at+the+desk&external_transaction_id=T-1&format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || f.Balance != 10 || f.Status.Value != "ACTIVE" {
			t.Fatalf("after paying 2.50: %s", w.Body)
		}
		stored, err := k.Circulation.Fee(t.Context(), inst, "owes", f1.ID)
		if err != nil || len(stored.Transactions) != 1 {
			t.Fatalf("the fee stored: %+v, %v", stored, err)
		}
		if tr := stored.Transactions[0]; tr.Kind != circulation.Payment || tr.Amount != 250 || tr.Method != "CASH" || tr.Comment != "at the desk" || tr.ExternalID != "T-1" || tr.By != "api" {
			t.Errorf("the payment stored: %+v", tr)
		}
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f1.ID+"?op=refund&amount=1", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f1.ID+"?op=pay&amount=99", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f1.ID+"?op=pay", ""), http.StatusBadRequest, "401664")

		w = want(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f2.ID+"?op=waive&amount=ALL&reason=ERROR&comment=sorry&format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || f.Balance != 0 || f.Status.Value != "CLOSED" {
			t.Fatalf("after the waiver: %s", w.Body)
		}
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/"+f2.ID+"?op=pay&amount=1", ""), http.StatusBadRequest, "401666")

		f3 := charge(`{"type":{"value":"OTHER"},"original_amount":"1.25","comment":"Print"}`, "Content-Type", "application/json")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/all?op=pay&amount=100", ""), http.StatusBadRequest, "401666")
		almaErr(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/all?op=waive&amount=ALL", ""), http.StatusBadRequest, "401666")
		w = want(t, s.do(http.MethodPost, "/almaws/v1/users/owes/fees/all?op=pay&amount=11.25&method=ONLINE&format=json", ""), http.StatusOK)
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Total != 0 || l.TotalSum != 0 {
			t.Errorf("after paying all: %s", w.Body)
		}
		if got, err := k.Circulation.Fee(t.Context(), inst, "owes", f3.ID); err != nil || got.Status != circulation.FeeClosed || got.Transactions[0].Method != "ONLINE" {
			t.Errorf("the last fee after paying all: %+v, %v", got, err)
		}

		sample, err := os.ReadFile(filepath.Join(almaAPIDir(t), "uio_fees_response.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(sample, &l); err != nil || l.Total != 1 || l.TotalSum != 750 || l.Currency != "NOK" || l.Fees[0].Balance != 750 {
			t.Errorf("Alma's sample: %+v, %v", l, err)
		}
	})
}
