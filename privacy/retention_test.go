package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/internal/dbtest"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patron/sis"
	"github.com/patronkit/patronkit/patronkittest"
	"github.com/patronkit/patronkit/privacy"
)

func rules(rs ...privacy.RetentionRule) patronkittest.Option {
	return func(c *patronkit.Config) { c.RetentionRules = rs }
}

// borrowed lends a new item of library to u and takes it back after d.
func borrowed(t *testing.T, k *patronkittest.Kit, u *patron.User, library string, d time.Duration) *circulation.Loan {
	t.Helper()
	it := patronkittest.Item(t, k, "UNI", func(it *circulation.Item) { it.Library = library })
	l := patronkittest.Loan(t, k, "UNI", u, it)
	k.Clock.Advance(d)
	if _, err := k.Circulation.CheckIn(context.Background(), "UNI", it.Barcode); err != nil {
		t.Fatal(err)
	}
	return l
}

// holder is the user_id a loan, fee, request or notice holds now (empty:
// anonymized).
func holder(t *testing.T, k *patronkittest.Kit, table, id string) string {
	t.Helper()
	var u string
	if err := k.DB.Raw("SELECT user_id FROM "+table+" WHERE id = ?", id).Scan(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u
}

func anonymize(t *testing.T, k *patronkittest.Kit, dry bool) privacy.Counts {
	t.Helper()
	run, err := k.Retention.Anonymize(context.Background(), "UNI", dry)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != privacy.RunDone || run.DryRun != dry {
		t.Fatalf("the run %+v", run)
	}
	return run.Counts
}

// Each loan follows the most specific rule: library and group, then
// library, then group, then neither; immediately, after N days, never.
func TestRetentionRulesAnonymizeLoansByTheMostSpecificRule(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		alice := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.UserGroup = "UNDERGRAD" })
		sam := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.UserGroup = "STAFF" })
		a1 := borrowed(t, k, alice, "MAIN", time.Hour)
		a2 := borrowed(t, k, alice, "BRANCH", time.Hour)
		s1 := borrowed(t, k, sam, "MAIN", time.Hour)
		s2 := borrowed(t, k, sam, "BRANCH", time.Hour)
		if got := anonymize(t, k, false); got != (privacy.Counts{Loans: 1}) {
			t.Errorf("first run: %+v", got)
		}
		is := func(l *circulation.Loan, anon bool) {
			t.Helper()
			if got := holder(t, k, "pk_circ_loans", l.ID); (got == "") != anon {
				t.Errorf("loan at %s of %s: user_id %q, want anonymized %v", l.Library, l.PrimaryID, got, anon)
			}
		}
		is(a1, false)
		is(a2, true)
		is(s1, false)
		is(s2, false)
		k.Clock.Advance(11 * 24 * time.Hour)
		anonymize(t, k, false)
		is(a1, false)
		is(s2, true)
		k.Clock.Advance(20 * 24 * time.Hour)
		anonymize(t, k, false)
		is(a1, true)
		is(s1, false)
		k.Clock.Advance(1000 * 24 * time.Hour)
		if got := anonymize(t, k, false); got != (privacy.Counts{}) {
			t.Errorf("a run with nothing left to do: %+v", got)
		}
		is(s1, false)
		hist, err := k.Circulation.Loans(ctx, "UNI", alice.PrimaryID, false)
		if err != nil || len(hist) != 0 {
			t.Errorf("alice's history still holds %+v, %v", hist, err)
		}
	}, rules(
		privacy.RetentionRule{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeAfterDays, Days: 30},
		privacy.RetentionRule{Kind: privacy.RetainLoans, UserGroup: "staff", Anonymize: privacy.KeepForever},
		privacy.RetentionRule{Kind: privacy.RetainLoans, Library: "BRANCH", Anonymize: privacy.AnonymizeImmediately},
		privacy.RetentionRule{Kind: privacy.RetainLoans, Library: "BRANCH", UserGroup: "STAFF", Anonymize: privacy.AnonymizeAfterDays, Days: 10},
	))
}

// Without rules (the default) nothing is anonymized, ever.
func TestWithoutRulesEveryRecordIsKept(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		u := patronkittest.User(t, k, "UNI")
		l := borrowed(t, k, u, "MAIN", time.Hour)
		k.Clock.Advance(10000 * 24 * time.Hour)
		if got := anonymize(t, k, false); got != (privacy.Counts{}) {
			t.Errorf("counts %+v", got)
		}
		if holder(t, k, "pk_circ_loans", l.ID) != u.ID {
			t.Error("the loan lost its borrower")
		}
	})
}

// A loan that carried a fee is counted from the day the fee closed, and
// kept while the fee is open; the fee follows its own rule, and while it
// names the patron it keeps its loan too: an anonymized loan is never
// linked (by the fee's loan_id) to a fee that names its borrower.
func TestALoanWithAFeeCountsFromTheFeeClosing(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		patronkittest.Terms(t, k, "UNI", circulation.Rule{Name: "fines", Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days,
			OverdueFine: 10, OverdueFineUnit: "day", Currency: "USD"}})
		u := patronkittest.User(t, k, "UNI")
		l := borrowed(t, k, u, "MAIN", 5*24*time.Hour)
		fees, err := k.Circulation.Fees(ctx, "UNI", u.PrimaryID, false)
		if err != nil || len(fees) != 1 || fees[0].LoanID != l.ID {
			t.Fatalf("fees %+v, %v", fees, err)
		}
		k.Clock.Advance(10 * 24 * time.Hour)
		if got := anonymize(t, k, false); got.Loans != 0 {
			t.Fatalf("a loan with an open fee was anonymized: %+v", got)
		}
		if _, err := k.Circulation.Pay(ctx, "UNI", u.PrimaryID, fees[0].ID, fees[0].Remaining()); err != nil {
			t.Fatal(err)
		}
		k.Clock.Advance(6 * 24 * time.Hour)
		if got := anonymize(t, k, false); got.Loans != 0 || got.Fees != 0 {
			t.Fatalf("anonymized 6 days after the fee closed (loan: 16 days after the return): %+v", got)
		}
		k.Clock.Advance(2 * 24 * time.Hour)
		if got := anonymize(t, k, false); got.Loans != 0 {
			t.Fatalf("the loan was anonymized while its fee names the patron: %+v", got)
		}
		if holder(t, k, "pk_circ_loans", l.ID) != u.ID || holder(t, k, "pk_circ_fees", fees[0].ID) != u.ID {
			t.Error("the loan or the fee lost its patron before the fee's rule")
		}
		k.Clock.Advance(30 * 24 * time.Hour)
		if got := anonymize(t, k, false); got.Fees != 1 || got.Loans != 1 {
			t.Fatalf("the fee, 38 days closed, and its loan with it: %+v", got)
		}
		if holder(t, k, "pk_circ_loans", l.ID) != "" || holder(t, k, "pk_circ_fees", fees[0].ID) != "" {
			t.Error("the loan or the fee kept its patron")
		}
	}, rules(
		privacy.RetentionRule{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeAfterDays, Days: 7},
		privacy.RetentionRule{Kind: privacy.RetainFees, Anonymize: privacy.AnonymizeAfterDays, Days: 30},
	))
}

// The last borrower of an item is kept on its latest loan for the window.
func TestTheLastBorrowerIsKeptForTheWindow(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		alice, bob := patronkittest.User(t, k, "UNI"), patronkittest.User(t, k, "UNI")
		it := patronkittest.Item(t, k, "UNI")
		lend := func(u *patron.User) *circulation.Loan {
			l := patronkittest.Loan(t, k, "UNI", u, it)
			k.Clock.Advance(time.Hour)
			if _, err := k.Circulation.CheckIn(ctx, "UNI", it.Barcode); err != nil {
				t.Fatal(err)
			}
			return l
		}
		la := lend(alice)
		if got := anonymize(t, k, false); got.Loans != 0 {
			t.Fatalf("the last borrower was anonymized at once: %+v", got)
		}
		k.Clock.Advance(time.Hour)
		lb := lend(bob)
		if got := anonymize(t, k, false); got.Loans != 1 || holder(t, k, "pk_circ_loans", la.ID) != "" || holder(t, k, "pk_circ_loans", lb.ID) != bob.ID {
			t.Fatalf("after the next loan: %+v", got)
		}
		k.Clock.Advance(8 * 24 * time.Hour)
		if got := anonymize(t, k, false); got.Loans != 1 || holder(t, k, "pk_circ_loans", lb.ID) != "" {
			t.Fatalf("after the window: %+v", got)
		}
	}, rules(privacy.RetentionRule{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately}),
		func(c *patronkit.Config) { c.LastBorrowerDays = 7 })
}

// A patron's own choice wins over the library's rule: never keeps nothing
// at the next run, even without rules; forever keeps all.
func TestThePatronsChoiceWinsOverTheRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   []privacy.RetentionRule
		choice string
		window int
		anon   bool
	}{
		{"never without rules", nil, privacy.HistoryNever, 0, true},
		{"never against a keep-forever rule", []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.KeepForever}}, privacy.HistoryNever, 0, true},
		{"never against the last-borrower window", []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately}}, privacy.HistoryNever, 30, true},
		{"forever against an immediate rule", []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately}}, privacy.HistoryForever, 0, false},
		{"the library's rule", []privacy.RetentionRule{{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately}}, privacy.HistoryLibraryRule, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
				ctx := context.Background()
				u, other := patronkittest.User(t, k, "UNI"), patronkittest.User(t, k, "UNI")
				if err := k.Retention.SetHistoryChoice(ctx, "UNI", u.ID, tc.choice); err != nil {
					t.Fatal(err)
				}
				l := borrowed(t, k, u, "MAIN", time.Hour)
				o := borrowed(t, k, other, "MAIN", time.Hour)
				anonymize(t, k, false)
				if got := holder(t, k, "pk_circ_loans", l.ID); (got == "") != tc.anon {
					t.Errorf("the patron's loan holds %q, want anonymized %v", got, tc.anon)
				}
				if got := holder(t, k, "pk_circ_loans", o.ID); (got == "") != (tc.window == 0 && tc.rule != nil && tc.rule[0].Anonymize == privacy.AnonymizeImmediately) {
					t.Errorf("another patron's loan holds %q", got)
				}
			}, rules(tc.rule...), func(c *patronkit.Config) { c.LastBorrowerDays = tc.window })
		})
	}
}

// A dry run counts what a run would do and changes nothing; its report
// is kept.
func TestADryRunWritesNothing(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		p := seedClosed(t, k)
		before := snapshot(t, k)
		dry, err := k.Retention.Anonymize(ctx, "UNI", true)
		if err != nil {
			t.Fatal(err)
		}
		if dry.Counts != p.want {
			t.Errorf("dry counts %+v, want %+v", dry.Counts, p.want)
		}
		if after := snapshot(t, k); after != before {
			t.Errorf("a dry run changed the tables:\n%s\n%s", before, after)
		}
		got, err := k.Retention.Run(ctx, "UNI", dry.ID)
		if err != nil || got.Counts != p.want || !got.DryRun || got.Status != privacy.RunDone || got.Finished == nil {
			t.Errorf("the dry run's report %+v, %v", got, err)
		}
		if c := anonymize(t, k, false); c != p.want {
			t.Errorf("the run %+v, want %+v", c, p.want)
		}
	}, allImmediately)
}

var allImmediately = rules(
	privacy.RetentionRule{Kind: privacy.RetainLoans, Anonymize: privacy.AnonymizeImmediately},
	privacy.RetentionRule{Kind: privacy.RetainFees, Anonymize: privacy.AnonymizeImmediately},
	privacy.RetentionRule{Kind: privacy.RetainRequests, Anonymize: privacy.AnonymizeImmediately},
	privacy.RetentionRule{Kind: privacy.RetainNotices, Anonymize: privacy.AnonymizeImmediately},
)

type closedRecords struct {
	user    *patron.User
	loans   []string
	fee     string
	request string
	want    privacy.Counts
}

// seedClosed gives a patron three returned loans (each with its receipt
// sent), a paid fee with its payment, and a cancelled request; another
// patron an open loan (whose receipt is sent too).
func seedClosed(t *testing.T, k *patronkittest.Kit) closedRecords {
	t.Helper()
	ctx := context.Background()
	var p closedRecords
	p.user = patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.PrimaryID, u.FirstName, u.LastName, u.UserGroup, u.JobCategory = "wilhelmina-q", "Wilhelmina", "Quarrington", "GRAD", "Research assistant"
		u.Emails = []patron.Email{{EmailAddress: "wq@quarrington.example", Preferred: true}}
		u.Identifiers = []patron.Identifier{{IDType: "BARCODE", Value: "USER-BC-7731"}}
		u.Notes = []patron.Note{{NoteType: "CIRCULATION", NoteText: "prefers the back door"}}
		u.Statistics = []patron.Statistic{{StatisticCategory: "HISTORY"}}
	})
	other := patronkittest.User(t, k, "UNI")
	for range 3 {
		p.loans = append(p.loans, borrowed(t, k, p.user, "MAIN", time.Hour).ID)
	}
	patronkittest.Loan(t, k, "UNI", other, patronkittest.Item(t, k, "UNI"))
	f, err := k.Circulation.AddFee(ctx, "UNI", p.user.PrimaryID, circulation.NewFee{Amount: 300, Currency: "USD", Description: "Lost charger"})
	if err != nil {
		t.Fatal(err)
	}
	// A payment whose details name the patron (a comment, a receipt
	// number holding their barcode), as a payment taken through Alma's
	// API may.
	if _, err := k.Circulation.PayWith(ctx, "UNI", p.user.PrimaryID, f.ID, 300, circulation.PaymentDetails{
		Method: "CASH", Comment: "paid by Wilhelmina-Q at the desk", ExternalID: "receipt usr-bc-7731"}); err != nil {
		t.Fatal(err)
	}
	p.fee = f.ID
	it := patronkittest.Item(t, k, "UNI")
	r, err := k.Circulation.PlaceRequest(ctx, "UNI", p.user.PrimaryID, circulation.NewRequest{Barcode: it.Barcode, PickupLibrary: patronkittest.DefaultLibrary})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Circulation.CancelRequest(ctx, "UNI", p.user.PrimaryID, r.ID, "no longer needed"); err != nil {
		t.Fatal(err)
	}
	p.request = r.ID
	if _, err := k.Circulation.SendNotices(ctx); err != nil {
		t.Fatal(err)
	}
	var notices int64
	if err := k.DB.Raw("SELECT COUNT(*) FROM pk_circ_notices WHERE status IN ?", []string{circulation.NoticeSent, circulation.NoticeFailed, circulation.NoticeSkipped}).Scan(&notices).Error; err != nil {
		t.Fatal(err)
	}
	if notices == 0 {
		t.Fatal("no notice was sent")
	}
	p.want = privacy.Counts{Loans: 3, Fees: 1, Requests: 1, Notices: notices}
	return p
}

// snapshot is every row of the tables a run may change, as text.
func snapshot(t *testing.T, k *patronkittest.Kit) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"pk_circ_loans", "pk_circ_fees", "pk_circ_fee_transactions", "pk_circ_requests", "pk_circ_notices", "pk_sis_outcomes", "pk_privacy_anonymized"} {
		var rows []map[string]any
		if err := k.DB.Table(table).Order("1").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %v\n", table, rows)
	}
	return b.String()
}

// No column of an anonymized loan, fee, request or notice, nor of what it
// keeps of its patron, holds a value of the patron's record.
func TestNoColumnOfAnAnonymizedRecordJoinsBackToItsPatron(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		p := seedClosed(t, k)
		values := map[string]bool{}
		collect := func(table, where string, args ...any) {
			var rows []map[string]any
			if err := k.DB.Table(table).Where(where, args...).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				for c, v := range r {
					s := strings.TrimSpace(fmt.Sprint(v))
					if _, date := v.(time.Time); date {
						continue // dates are kept, for statistics
					}
					if v == nil || s == "" || c == "institution" || c == "created_at" || c == "updated_at" || c == "version" || len(s) < 4 {
						continue
					}
					values[strings.ToLower(s)] = true
				}
			}
		}
		collect("pk_users", "id = ?", p.user.ID)
		for _, seg := range []string{"pk_user_identifiers", "pk_user_emails", "pk_user_notes"} {
			collect(seg, "user_id = ?", p.user.ID)
		}
		for _, drop := range []string{"active", "public", "internal", "grad", "research assistant", "history", "barcode", "circulation", "true", "false"} {
			delete(values, drop)
		}
		if !values["wilhelmina-q"] || !values["usr-bc-7731"] && !values["user-bc-7731"] || !values[strings.ToLower(p.user.ID)] {
			t.Fatalf("the user's values %v", values)
		}
		if c := anonymize(t, k, false); c != p.want {
			t.Fatalf("counts %+v, want %+v", c, p.want)
		}
		check := func(table, where string, args ...any) int {
			var rows []map[string]any
			if err := k.DB.Table(table).Where(where, args...).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				for c, v := range r {
					s := strings.ToLower(strings.TrimSpace(fmt.Sprint(v)))
					for val := range values {
						if s == val || strings.Contains(s, val) && len(val) >= 8 {
							t.Errorf("%s.%s = %q holds the patron's %q", table, c, s, val)
						}
					}
				}
			}
			return len(rows)
		}
		if n := check("pk_circ_loans", "id IN ?", p.loans); n != 3 {
			t.Errorf("%d loans", n)
		}
		check("pk_circ_fees", "id = ?", p.fee)
		check("pk_circ_fee_transactions", "fee_id = ?", p.fee)
		check("pk_circ_requests", "id = ?", p.request)
		var noticeIDs []string
		k.DB.Raw("SELECT record_id FROM pk_privacy_anonymized WHERE kind = ?", privacy.RetainNotices).Scan(&noticeIDs)
		if n := check("pk_circ_notices", "id IN ?", noticeIDs); int64(n) != p.want.Notices {
			t.Errorf("%d notices", n)
		}
		if n := check("pk_privacy_anonymized", "1 = 1"); int64(n) != p.want.Total() {
			t.Errorf("%d snapshots", n)
		}
		var snap privacy.Anonymized
		if err := k.DB.Where("kind = ? AND record_id = ?", privacy.RetainLoans, p.loans[0]).Take(&snap).Error; err != nil {
			t.Fatal(err)
		}
		if snap.UserGroup != "GRAD" || snap.JobCategory != "Research assistant" || snap.StatisticCategories != "HISTORY" || snap.RecordType != "PUBLIC" || snap.Pseudonym == "" {
			t.Errorf("the loan's snapshot %+v", snap)
		}
		hist, err := k.Circulation.Loans(ctx, "UNI", p.user.PrimaryID, false)
		if err != nil || len(hist) != 0 {
			t.Errorf("the patron's loan history %+v, %v", hist, err)
		}
	}, allImmediately, func(c *patronkit.Config) { c.PseudonymKey = []byte("a secret of the library's") })
}

// A run that stops midway (its context cancelled after the first batch)
// leaves what it did; the next run does the rest, nothing twice.
func TestACancelledRunResumesWithoutDoingAnythingTwice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k := patronkittest.On(t, db, allImmediately)
		p := seedClosed(t, k)
		r, err := privacy.NewRetention(db, privacy.RetentionOptions{Rules: k.Retention.Rules("UNI"), Patrons: k.Patrons, Now: k.Clock.Now, BatchSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		privacy.SetAfterBatch(r, func(string) { cancel() })
		first, err := r.Anonymize(ctx, "UNI", false)
		// (Two writers on PostgreSQL and MySQL: the batch beside the
		// first may be written too, not the rest.)
		if !errors.Is(err, context.Canceled) || first == nil || first.Status != privacy.RunFailed || first.Counts.Total() == 0 || first.Counts.Total() >= p.want.Total() {
			t.Fatalf("the cancelled run %+v, %v", first, err)
		}
		if got, err := r.Run(context.Background(), "UNI", first.ID); err != nil || got.Counts != first.Counts || got.Status != privacy.RunFailed {
			t.Errorf("its report %+v, %v", got, err)
		}
		privacy.SetAfterBatch(r, nil)
		second, err := r.Anonymize(context.Background(), "UNI", false)
		if err != nil {
			t.Fatal(err)
		}
		total := first.Counts
		total.Loans += second.Counts.Loans
		total.Fees += second.Counts.Fees
		total.Requests += second.Counts.Requests
		total.Notices += second.Counts.Notices
		if total != p.want || second.Counts.Total() == 0 {
			t.Errorf("the runs did %+v then %+v, want %+v in all", first.Counts, second.Counts, p.want)
		}
		var snaps int64
		db.Table("pk_privacy_anonymized").Count(&snaps)
		if snaps != p.want.Total() {
			t.Errorf("%d snapshots, want %d", snaps, p.want.Total())
		}
	})
}

// Two instances over one database running at once: one works, the other
// is told another run is in progress; the work is done once.
func TestTwoInstancesAnonymizeOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		k1 := patronkittest.On(t, db, allImmediately, func(c *patronkit.Config) { c.Instance = "one" })
		k2 := patronkittest.On(t, db, allImmediately, func(c *patronkit.Config) { c.Instance = "two" })
		p := seedClosed(t, k1)
		r1, err := privacy.NewRetention(db, privacy.RetentionOptions{Rules: k1.Retention.Rules("UNI"), Patrons: k1.Patrons, Now: k1.Clock.Now, BatchSize: 2, Instance: "one"})
		if err != nil {
			t.Fatal(err)
		}
		var second *privacy.AnonymizationRun
		var secondErr error
		var once sync.Once
		privacy.SetAfterBatch(r1, func(string) {
			once.Do(func() { second, secondErr = k2.Retention.Anonymize(context.Background(), "UNI", false) })
		})
		first, err := r1.Anonymize(context.Background(), "UNI", false)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(secondErr, privacy.ErrRunInProgress) || second != nil {
			t.Errorf("the second instance's run %+v, %v", second, secondErr)
		}
		if first.Counts != p.want {
			t.Errorf("the first %+v, want %+v", first.Counts, p.want)
		}
		// Once the first is done, the second finds nothing left.
		again, err := k2.Retention.Anonymize(context.Background(), "UNI", false)
		if err != nil || again.Counts != (privacy.Counts{}) {
			t.Errorf("the second afterwards %+v, %v", again, err)
		}
	})
}

// AnonymizeUser anonymizes every closed record of one user within the
// caller's transaction: rolled back with it, kept with its commit; an
// open fee keeps its loan; every run leaves an audit entry.
func TestAnonymizeUserJoinsTheCallersTransaction(t *testing.T) {
	audit := &auditLog{}
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		p := seedClosed(t, k)
		boom := errors.New("the purge failed")
		err := k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			c, err := k.Retention.AnonymizeUser(ctx, "UNI", p.user.ID)
			if err != nil {
				return err
			}
			if c.Loans != 3 || c.Fees != 1 || c.Requests != 1 || c.Notices != p.want.Notices-1 { // the other patron's receipt is not theirs
				t.Errorf("counts %+v", c)
			}
			return boom
		})
		if !errors.Is(err, boom) || holder(t, k, "pk_circ_loans", p.loans[0]) != p.user.ID {
			t.Fatalf("after a rollback: %v, the loan holds %q", err, holder(t, k, "pk_circ_loans", p.loans[0]))
		}
		var c privacy.Counts
		err = k.InTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
			c, err = k.Retention.AnonymizeUser(ctx, "UNI", p.user.ID)
			return err
		})
		if err != nil || c.Loans != 3 || holder(t, k, "pk_circ_loans", p.loans[0]) != "" {
			t.Fatalf("after a commit: %+v, %v", c, err)
		}
		e := audit.last()
		if e.What != "anonymization" || e.Action != "update" || e.PrimaryID != p.user.PrimaryID || !strings.Contains(e.Details, `"loans":3`) {
			t.Errorf("the audit event %+v", e)
		}
		// The kit's run is on the trail too.
		patronkittest.Terms(t, k, "UNI", circulation.Rule{Name: "fines", Terms: circulation.Terms{LoanPeriod: 1, LoanPeriodUnit: circulation.Days,
			OverdueFine: 10, OverdueFineUnit: "day", Currency: "USD"}})
		owing := borrowed(t, k, p.user, "MAIN", 3*24*time.Hour)
		done := borrowed(t, k, p.user, "MAIN", time.Hour)
		if c, err = k.Retention.AnonymizeUser(ctx, "UNI", p.user.ID); err != nil || c.Loans != 1 {
			t.Errorf("with an open fee: %+v, %v", c, err)
		}
		if holder(t, k, "pk_circ_loans", owing.ID) != p.user.ID || holder(t, k, "pk_circ_loans", done.ID) != "" {
			t.Error("the loan with an open fee was anonymized, or the other not")
		}
		borrowed(t, k, patronkittest.User(t, k, "UNI"), "MAIN", time.Hour)
		run := anonymize(t, k, false)
		e = audit.last()
		if run.Loans != 1 || e.What != "anonymization" || e.Actor.ID != "system:anonymization" || !strings.Contains(e.Details, `"loans":1`) {
			t.Errorf("run %+v, the audit event %+v", run, e)
		}
	}, allImmediately, func(c *patronkit.Config) { c.Audit = audit })
}

// What an SIS run did with each record loses the record's primary_id once
// the run ended longer ago than the rule says.
func TestSISOutcomesAreAnonymizedAfterTheirRetention(t *testing.T) {
	src := patronkittest.NewSource("registrar")
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		if _, err := k.SIS.CreateProfile(ctx, "UNI", &sis.Profile{Code: "REG", Source: src.Name(), Mode: sis.ModeSynchronize}); err != nil {
			t.Fatal(err)
		}
		src.Add(t.Name()+".xml", sisUsers("ann-sis", "ben-sis", "cat-sis"))
		r, err := k.SIS.StartRun(ctx, "UNI", "REG", sis.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r, err = k.SIS.Wait(ctx, r.ID); err != nil || r.Status != sis.RunSucceeded {
			t.Fatalf("the SIS run %+v, %v", r, err)
		}
		named := func() (n int64) {
			t.Helper()
			if err := k.DB.Raw("SELECT COUNT(*) FROM pk_sis_outcomes WHERE run_id = ? AND primary_id <> ''", r.ID).Scan(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if named() != 3 {
			t.Fatalf("%d outcomes name their user", named())
		}
		k.Clock.Advance(29 * 24 * time.Hour)
		if c := anonymize(t, k, false); c != (privacy.Counts{}) || named() != 3 {
			t.Errorf("29 days after the run: %+v, %d named", c, named())
		}
		k.Clock.Advance(2 * 24 * time.Hour)
		if c := anonymize(t, k, true); c != (privacy.Counts{SISOutcomes: 3}) || named() != 3 {
			t.Errorf("a dry run 31 days after: %+v, %d named", c, named())
		}
		if c := anonymize(t, k, false); c != (privacy.Counts{SISOutcomes: 3}) || named() != 0 {
			t.Errorf("31 days after: %+v, %d named", c, named())
		}
	}, rules(privacy.RetentionRule{Kind: privacy.RetainSISOutcomes, Anonymize: privacy.AnonymizeAfterDays, Days: 30}), withSource(src, &auditLog{}))
}
