package ginapi_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
)

// causeCodes are the codes of causes, and whether their texts are texts.
func causeCodes(causes []fault.Reason, texts []string) ([]string, bool) {
	var codes []string
	for _, c := range causes {
		codes = append(codes, c.Code)
	}
	same := len(causes) == len(texts)
	for i := 0; same && i < len(texts); i++ {
		same = causes[i].Text == texts[i]
	}
	return codes, same
}

func TestARefusalGivesTheCodesOfItsReasons(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := loanServerOn(t, db, nil)
		var l circulation.Loan
		s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "student1", "barcode": "MAIN-0001"}).status(http.StatusCreated).json(&l)

		// A blocked patron asking for an item on loan: both reasons, in
		// English as before and with their codes and values.
		p := s.do(deskStaff, "POST", "/api/loans", map[string]any{"primary_id": "blocked1", "barcode": "MAIN-0001"}).status(http.StatusConflict).problem()
		codes, same := causeCodes(p.Causes, p.Reasons)
		if len(codes) != 2 || codes[0] != circulation.ReasonBlocked || codes[1] != circulation.ReasonItemNotAvailable || !same {
			t.Fatalf("causes %+v of reasons %q", p.Causes, p.Reasons)
		}
		if a := p.Causes[0].Args; a["description"] != "LOST_CARD" || a["block_type"] != "GENERAL" || a["primary_id"] != "blocked1" {
			t.Fatalf("the block's values: %v", a)
		}
		if a := p.Causes[1].Args; a["barcode"] != "MAIN-0001" || a["status"] != circulation.StatusOnLoan {
			t.Fatalf("the item's values: %v", a)
		}

		// Renewing at once: the loan and the renew results.
		p = s.do(deskStaff, "POST", "/api/loans/"+l.ID+"/renew", nil).status(http.StatusConflict).problem()
		if codes, same := causeCodes(p.Causes, p.Reasons); len(codes) != 1 || codes[0] != circulation.ReasonDueDateUnchanged || !same {
			t.Fatalf("renewal refused: %+v", p)
		}
		var rr struct {
			Results []circulation.RenewResult `json:"results"`
		}
		s.do(deskStaff, "POST", "/api/users/student1/loans/renew", map[string]any{"loan_ids": []string{l.ID, "no-such-loan"}}).status(http.StatusOK).json(&rr)
		if len(rr.Results) != 2 {
			t.Fatalf("%+v", rr)
		}
		for i, want := range []string{circulation.ReasonDueDateUnchanged, circulation.ReasonNoOpenLoan} {
			r := rr.Results[i]
			if codes, same := causeCodes(r.Causes, r.Reasons); r.Renewed || len(codes) != 1 || codes[0] != want || !same {
				t.Fatalf("result %d: %+v, want %s", i, r, want)
			}
		}
	})
}
