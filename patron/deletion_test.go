package patron_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// batchGuard objects to the users named in objections, answering for a
// whole batch at once, and counts its calls.
type batchGuard struct {
	objections map[string]string
	single     int
	batches    [][]string
}

func (g *batchGuard) DeletionReasons(ctx context.Context, u *patron.User) ([]string, error) {
	g.single++
	if r, ok := g.objections[u.PrimaryID]; ok {
		return []string{r}, nil
	}
	return nil, nil
}

func (g *batchGuard) DeletionReasonsMany(ctx context.Context, users []*patron.User) (map[string][]string, error) {
	out := map[string][]string{}
	var names []string
	for _, u := range users {
		names = append(names, u.PrimaryID)
		if r, ok := g.objections[u.PrimaryID]; ok {
			out[u.ID] = []string{r}
		}
	}
	g.batches = append(g.batches, names)
	return out, nil
}

// A batch deletion holds its users, asks a batch guard once for all and
// any other guard user by user, refuses the users objected to with every
// reason, and removes the others with their segments, counted per user.
func TestADeletionOfABatchAsksTheGuardsOnceAndRemovesWhomTheyLetGo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		ann := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "ann", FirstName: "A", LastName: "Ann",
			Emails: []patron.Email{{EmailAddress: "ann@x.example"}, {EmailAddress: "ann2@x.example"}}})
		bob := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "bob", FirstName: "B", LastName: "Bob"})
		cid := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "cid", FirstName: "C", LastName: "Cid"})
		g := &batchGuard{objections: map[string]string{"bob": "has 1 open loan"}}
		f.svc.AddDeletionGuard(g)
		var perUser []string
		f.svc.AddDeletionGuard(patron.DeletionGuardFunc(func(ctx context.Context, u *patron.User) ([]string, error) {
			perUser = append(perUser, u.PrimaryID)
			if u.PrimaryID == "cid" {
				return []string{"kept by the host"}, nil
			}
			return nil, nil
		}))
		var hooked []string
		f.svc.AddDeletionHook(patron.DeletionHookFunc(func(ctx context.Context, tx *gorm.DB, u *patron.User) error {
			hooked = append(hooked, u.PrimaryID)
			return nil
		}))
		var removed map[string][]patron.RemovedRows
		err := txctx.Transaction(f.ctx, db, func(ctx context.Context, tx *gorm.DB) error {
			d, err := f.svc.PrepareDeletion(ctx, "UNI", []string{cid.ID, ann.ID, bob.ID, "nobody"})
			if err != nil {
				return err
			}
			if len(d.Users) != 3 {
				t.Fatalf("%d users held, want 3", len(d.Users))
			}
			if _, err := d.Delete(ctx, bob.ID); !errors.Is(err, fault.ErrRefused) {
				t.Fatalf("deleting bob: %v", err)
			}
			if err := d.Refusal(cid.ID); err == nil {
				t.Fatal("cid: no refusal")
			}
			removed, err = d.Delete(ctx, ann.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.batches) == 1 {
			slices.Sort(g.batches[0])
		}
		if len(g.batches) != 1 || g.single != 0 || !slices.Equal(g.batches[0], []string{"ann", "bob", "cid"}) {
			t.Errorf("the batch guard was asked %v and %d times singly", g.batches, g.single)
		}
		slices.Sort(perUser)
		if !slices.Equal(perUser, []string{"ann", "bob", "cid"}) || !slices.Equal(hooked, []string{"ann"}) {
			t.Errorf("the other guard asked about %v, the hook told of %v", perUser, hooked)
		}
		emails := -1
		for _, r := range removed[ann.ID] {
			if r.Table == "pk_user_emails" {
				emails = int(r.Rows)
			}
		}
		if emails != 2 || len(removed) != 1 {
			t.Errorf("removed %+v", removed)
		}
		if _, err := f.svc.Get(f.ctx, "UNI", "ann"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("ann: %v", err)
		}
		for _, who := range []string{"bob", "cid"} {
			if _, err := f.svc.Get(f.ctx, "UNI", who); err != nil {
				t.Fatalf("%s: %v", who, err)
			}
		}
	})
}

// A deletion is prepared within the caller's transaction, or not at all.
func TestADeletionNeedsATransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, patron.Options{})
		u := mustCreate(t, f, "UNI", &patron.User{PrimaryID: "ann", FirstName: "A", LastName: "Ann"})
		if _, err := f.svc.PrepareDeletion(f.ctx, "UNI", []string{u.ID}); err == nil {
			t.Fatal("prepared outside a transaction")
		}
	})
}
