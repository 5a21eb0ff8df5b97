package privacy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

func TestALegalHoldRefusesTheUsersDeletionWithItsReason(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := staffCtx()
		u := patronkittest.User(t, k, inst)
		if _, err := k.LegalHolds.Get(ctx, inst, u.PrimaryID); !errors.Is(err, privacy.ErrNoLegalHold) {
			t.Fatalf("no hold yet: %v", err)
		}
		if _, err := k.LegalHolds.Set(ctx, inst, u.PrimaryID, "", ""); !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("an empty reason: %v", err)
		}
		h, err := k.LegalHolds.Set(ctx, inst, strings.ToUpper(u.PrimaryID), "claim 42 of the insurer", privacy.NoLegalHoldTag)
		if err != nil || h.Reason != "claim 42 of the insurer" || h.SetBy != "librarian" || !h.SetAt.Equal(k.Clock.Now().Truncate(1e9)) || h.PrimaryID != u.PrimaryID {
			t.Fatalf("Set = %+v, %v", h, err)
		}
		if _, err := k.LegalHolds.Set(ctx, inst, u.PrimaryID, "another", privacy.NoLegalHoldTag); !errors.Is(err, fault.ErrStale) {
			t.Fatalf("a hold set over one not read: %v", err)
		}
		err = k.Patrons.Delete(ctx, inst, u.PrimaryID)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Refused || len(fe.Reasons) != 1 || !strings.Contains(fe.Reasons[0], "claim 42 of the insurer") || !strings.Contains(fe.Reasons[0], "librarian") {
			t.Fatalf("the deletion of a held user: %v", err)
		}
		if got, err := k.LegalHolds.Get(context.Background(), inst, u.PrimaryID); err != nil || got.Tag() != h.Tag() {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if err := k.LegalHolds.Clear(ctx, inst, u.PrimaryID); err != nil {
			t.Fatal(err)
		}
		if err := k.LegalHolds.Clear(ctx, inst, u.PrimaryID); !errors.Is(err, privacy.ErrNoLegalHold) {
			t.Fatalf("Clear again: %v", err)
		}
		var details []string
		for _, e := range entries(t, k) {
			if e.What == privacy.LegalHoldWhat {
				if e.Action != patron.AuditUpdate || e.Subject != u.PrimaryID || e.ActorID != "librarian" {
					t.Errorf("entry %+v", e)
				}
				details = append(details, e.Details)
			}
		}
		if strings.Join(details, "|") != "set: claim 42 of the insurer|cleared" {
			t.Fatalf("the hold's entries: %q", details)
		}
		if err := k.Patrons.Delete(ctx, inst, u.PrimaryID); err != nil {
			t.Fatalf("the deletion once the hold is lifted: %v", err)
		}
	})
}
