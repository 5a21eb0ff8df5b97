package circulation_test

import (
	"testing"
	"time"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patronkittest"
)

// Staff change an open loan's due date: it is stored, the day it becomes
// lost by itself moves with it, no renewal is counted, and the change is
// on the audit trail; a date not after now is Invalid (due_date) and a
// returned loan Refused, both changing nothing; an unknown loan is
// NotFound.
func TestStaffChangeAnOpenLoansDueDate(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		patronkittest.Terms(t, k, auditInst, auditTerms)
		u := patronkittest.User(t, k, auditInst)
		it := patronkittest.Item(t, k, auditInst)
		l := patronkittest.Loan(t, k, auditInst, u, it)
		if l.LostAfter == nil {
			t.Fatal("the terms make the loan lost by itself")
		}
		ctx := asLibrarian()
		due := k.Clock.Now().Add(60 * 24 * time.Hour).Truncate(time.Second).UTC()

		from := seqNow(t, k)
		got, err := k.Circulation.ChangeDueDate(ctx, auditInst, l.ID, due)
		if err != nil {
			t.Fatal(err)
		}
		stored := must[*circulation.Loan](t)(k.Circulation.Loan(asPatron(u), auditInst, l.ID))
		for _, x := range []*circulation.Loan{got, stored} {
			if !x.DueAt.Equal(due) || x.Renewals != 0 || x.LostAfter == nil || !x.LostAfter.Equal(l.LostAfter.Add(due.Sub(l.DueAt))) || x.Version != l.Version+1 {
				t.Errorf("after the change: due %v, renewals %d, lost after %v, version %d", x.DueAt, x.Renewals, x.LostAfter, x.Version)
			}
		}
		wantTrail(t, changesSince(t, k, from), []string{
			"update staff/librarian " + u.PrimaryID + " loans " + js(map[string]any{"loan_id": l.ID, "item_barcode": it.Barcode,
				"due_date": map[string]any{"old": ts(l.DueAt), "new": ts(due)}}),
		})

		from = seqNow(t, k)
		_, err = k.Circulation.ChangeDueDate(ctx, auditInst, l.ID, k.Clock.Now().Add(-time.Hour))
		if e := wantKind(t, err, fault.Invalid); len(e.Fields) != 1 || e.Fields[0].Field != "due_date" {
			t.Errorf("a date in the past: %+v", e)
		}
		must[*circulation.Loan](t)(k.Circulation.CheckIn(ctx, auditInst, it.Barcode))
		from = seqNow(t, k)
		_, err = k.Circulation.ChangeDueDate(ctx, auditInst, l.ID, due.Add(time.Hour))
		wantKind(t, err, fault.Refused)
		if back := must[*circulation.Loan](t)(k.Circulation.Loan(asPatron(u), auditInst, l.ID)); !back.DueAt.Equal(due) {
			t.Errorf("a refused change changed the due date to %v", back.DueAt)
		}
		_, err = k.Circulation.ChangeDueDate(ctx, auditInst, "no-such-loan", due)
		wantKind(t, err, fault.NotFound)
		wantTrail(t, changesSince(t, k, from), nil)
	})
}
