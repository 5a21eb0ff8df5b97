package account_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/account"
	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
	"github.com/patronkit/patronkit/patronkittest"
)

func ptr[T any](v T) *T { return &v }

func TestCheckFieldsRefusesWhatIsTheLibrarys(t *testing.T) {
	if err := account.CheckFields(account.SettingsFields); err != nil {
		t.Fatalf("the settings fields: %v", err)
	}
	if err := account.CheckFields(nil); err != nil {
		t.Fatalf("no field: %v", err)
	}
	err := account.CheckFields([]string{"user_group", "sms", "first_name"})
	pe, ok := fault.As(err)
	if !ok || pe.Kind != fault.Invalid || len(pe.Fields) != 2 || pe.Fields[0].Field != "first_name" || pe.Fields[1].Field != "user_group" ||
		pe.Fields[0].Code != "read_only" {
		t.Fatalf("refused %v", err)
	}
}

// contactPatron has two emails (the first preferred), two phones (the
// first preferred) and an address.
func contactPatron(t *testing.T, k *patronkittest.Kit) *patron.User {
	t.Helper()
	return patronkittest.User(t, k, "UNI", func(u *patron.User) {
		u.Emails = []patron.Email{{EmailAddress: "sam@uni.example", Preferred: true}, {EmailAddress: "sam@home.example"}}
		u.Phones = []patron.Phone{{PhoneNumber: "+15550002", Preferred: true}, {PhoneNumber: "+15550003"}}
		u.Addresses = []patron.Address{{Line1: "1 College Road", City: "Springfield", PostalCode: "12345", Country: "USA", Preferred: true}}
	})
}

func TestAPatronChangesTheirSettings(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := contactPatron(t, k)
		st, err := k.Account.Settings(ctx, "UNI", u.PrimaryID)
		if err != nil || len(st.Emails) != 2 || !st.Emails[0].Preferred || st.SMS || len(st.NoticeOptOuts) != 0 || st.Version != u.Version ||
			st.Addresses[0].Value != "1 College Road, Springfield, 12345, USA" || !slices.Equal(st.OptionalNotices, circulation.OptionalNotices) {
			t.Fatalf("settings %+v, %v", st, err)
		}
		home := st.Emails[1].ID

		st, err = k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{PreferredEmail: &home, SMS: ptr(true),
			PreferredLanguage: ptr(" es "), NoticeOptOuts: &[]string{"Due_Soon "}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Emails[0].Preferred || !st.Emails[1].Preferred || !st.SMS || !st.Phones[0].PreferredSMS || st.Phones[1].PreferredSMS ||
			st.PreferredLanguage != "es" || !slices.Equal(st.NoticeOptOuts, []string{"due_soon"}) || st.Version != u.Version+1 {
			t.Fatalf("changed settings %+v", st)
		}
		// As stored.
		got, err := k.Patrons.Get(ctx, "UNI", u.PrimaryID)
		if err != nil || got.PreferredLanguage != "es" || !got.Emails[1].Preferred || got.Emails[0].Preferred || got.FirstName != u.FirstName {
			t.Fatalf("the record %+v, %v", got, err)
		}
		if opts, err := k.Circulation.NoticeOptOuts(ctx, "UNI", u.PrimaryID); err != nil || !slices.Equal(opts, []string{"due_soon"}) {
			t.Fatalf("opt-outs stored %v, %v", opts, err)
		}

		// Text messages follow the preferred phone.
		st, err = k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{PreferredPhone: &st.Phones[1].ID})
		if err != nil || !st.SMS || st.Phones[0].PreferredSMS || st.Phones[0].Preferred || !st.Phones[1].PreferredSMS || !st.Phones[1].Preferred {
			t.Fatalf("phones after a new preferred one %+v, %v", st, err)
		}
		// SMS off, opt-outs emptied, nothing else touched.
		st, err = k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{SMS: ptr(false), NoticeOptOuts: &[]string{}})
		if err != nil || st.SMS || len(st.NoticeOptOuts) != 0 || st.PreferredLanguage != "es" || !st.Phones[1].Preferred {
			t.Fatalf("SMS off %+v, %v", st, err)
		}
		// Only opt-outs: the record is not written.
		before := st.Version
		if st, err = k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{NoticeOptOuts: &[]string{"loan_receipt"}}); err != nil || st.Version != before {
			t.Fatalf("opt-outs alone wrote the record: version %d, was %d (%v)", st.Version, before, err)
		}
	})
}

func TestRefusedSettingsChangeNothing(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := contactPatron(t, k)
		other := contactPatron(t, k)
		before, err := k.Account.Settings(ctx, "UNI", u.PrimaryID)
		if err != nil {
			t.Fatal(err)
		}
		theirs := other.Emails[1].ID
		for name, c := range map[string]struct {
			change account.SettingsChange
			field  string
		}{
			"another patron's email":       {account.SettingsChange{PreferredEmail: &theirs, PreferredLanguage: ptr("es")}, "preferred_email"},
			"an unknown phone":             {account.SettingsChange{PreferredPhone: ptr("no-such-phone")}, "preferred_phone"},
			"an unknown address":           {account.SettingsChange{PreferredAddress: ptr(""), NoticeOptOuts: &[]string{"due_soon"}}, "preferred_address"},
			"opting out of overdue notice": {account.SettingsChange{PreferredLanguage: ptr("es"), NoticeOptOuts: &[]string{"due_soon", "overdue"}}, "notice_opt_outs[1]"},
		} {
			_, err := k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, c.change)
			pe, ok := fault.As(err)
			if !ok || pe.Kind != fault.Invalid || !slices.ContainsFunc(pe.Fields, func(f fault.FieldError) bool { return f.Field == c.field && f.Code == "unknown_value" }) {
				t.Errorf("%s: %v", name, err)
			}
		}
		after, err := k.Account.Settings(ctx, "UNI", u.PrimaryID)
		if err != nil || after.Version != before.Version || after.PreferredLanguage != "" || len(after.NoticeOptOuts) != 0 || !after.Emails[0].Preferred {
			t.Fatalf("refused changes changed something: %+v, %v", after, err)
		}

		// SMS needs a preferred phone.
		nophone := patronkittest.User(t, k, "UNI", func(u *patron.User) { u.Phones = []patron.Phone{{PhoneNumber: "+15550009"}} })
		_, err = k.Account.ChangeSettings(ctx, "UNI", nophone.PrimaryID, account.SettingsChange{SMS: ptr(true)})
		wantField(t, err, "sms", "unknown_value")
		if _, err := k.Account.ChangeSettings(ctx, "UNI", "nobody", account.SettingsChange{SMS: ptr(false)}); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("an unknown patron: %v", err)
		}
	})
}

// TestASettingsChangeIsWholeOrNothing: the record and the notice opt-outs
// are written in one transaction, so when the opt-outs cannot be written
// (here the database refuses them) the record keeps its language too.
func TestASettingsChangeIsWholeOrNothing(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := contactPatron(t, k)
		refused := errors.New("the notice preferences table is full")
		if err := k.DB.Callback().Create().Before("gorm:create").Register("test:refuse_prefs", func(tx *gorm.DB) {
			if tx.Statement.Table == "pk_circ_notice_prefs" {
				tx.AddError(refused)
			}
		}); err != nil {
			t.Fatal(err)
		}
		_, err := k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{PreferredLanguage: ptr("es"), NoticeOptOuts: &[]string{"due_soon"}})
		if !errors.Is(err, refused) {
			t.Fatalf("the change: %v", err)
		}
		got, err := k.Patrons.Get(ctx, "UNI", u.PrimaryID)
		if err != nil || got.PreferredLanguage != u.PreferredLanguage || got.Version != u.Version {
			t.Fatalf("the record changed without its opt-outs: language %q version %d (was %q, %d), %v", got.PreferredLanguage, got.Version, u.PreferredLanguage, u.Version, err)
		}
	})
}

// TestHistoryChoiceIsTheOverviews: the patron's history choice alone is
// the one the overview and the settings show, before and after they
// change it; an unknown patron is NotFound.
func TestHistoryChoiceIsTheOverviews(t *testing.T) {
	patronkittest.Each(t, func(t *testing.T, k *patronkittest.Kit) {
		ctx := context.Background()
		u := patronkittest.User(t, k, "UNI")
		for _, want := range []string{account.HistoryLibraryRule, account.HistoryNever} {
			if want != account.HistoryLibraryRule {
				if _, err := k.Account.ChangeSettings(ctx, "UNI", u.PrimaryID, account.SettingsChange{LoanHistory: &want}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := k.Account.HistoryChoice(ctx, "UNI", strings.ToUpper(u.PrimaryID))
			o, oerr := k.Account.Overview(ctx, "UNI", u.PrimaryID)
			if err != nil || oerr != nil || got != want || o.LoanHistory != want {
				t.Fatalf("history choice %q (%v), the overview's %q (%v), want %q", got, err, o.LoanHistory, oerr, want)
			}
		}
		if _, err := k.Account.HistoryChoice(ctx, "UNI", "nobody"); !errors.Is(err, fault.ErrNotFound) {
			t.Fatalf("an unknown patron: %v", err)
		}
	})
}
