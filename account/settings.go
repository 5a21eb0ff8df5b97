package account

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/circulation"
	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/txctx"
	"github.com/patronkit/patronkit/patron"
)

// Contact is one of the patron's email addresses, phones or addresses, as
// their settings show it.
type Contact struct {
	// ID names the contact: a SettingsChange names the preferred one by it.
	ID string `json:"id"`
	// Value is the address or number; an address's lines, city, postal
	// code and country, joined.
	Value        string `json:"value"`
	Preferred    bool   `json:"preferred"`
	PreferredSMS bool   `json:"preferred_sms,omitempty"`
}

// Settings are what a patron may change of their own record, as it is.
type Settings struct {
	Emails    []Contact `json:"emails"`
	Phones    []Contact `json:"phones"`
	Addresses []Contact `json:"addresses"`
	// SMS says notices go by text message to the preferred phone.
	SMS               bool     `json:"sms"`
	PreferredLanguage string   `json:"preferred_language"`
	NoticeOptOuts     []string `json:"notice_opt_outs"`
	// OptionalNotices are the kinds of notices a patron may opt out of.
	OptionalNotices []string `json:"optional_notices"`
	// LoanHistory is the patron's choice about their returned loans:
	// HistoryLibraryRule, HistoryForever or HistoryNever;
	// LoanHistoryChoices lists them.
	LoanHistory        string   `json:"loan_history"`
	LoanHistoryChoices []string `json:"loan_history_choices"`
	// Version is the version of the patron's record.
	Version int `json:"-"`
}

// SettingsChange is what a patron asks to change of their settings: each
// field given (not nil) is changed, the others stay. The preferred
// contacts are named by their Contact.ID.
type SettingsChange struct {
	PreferredEmail   *string `json:"preferred_email"`
	PreferredPhone   *string `json:"preferred_phone"`
	PreferredAddress *string `json:"preferred_address"`
	// SMS true sends notices by text message to the preferred phone (there
	// must be one); false by email.
	SMS               *bool   `json:"sms"`
	PreferredLanguage *string `json:"preferred_language"`
	// NoticeOptOuts replaces the kinds of notices the patron opts out of:
	// each one of circulation.OptionalNotices.
	NoticeOptOuts *[]string `json:"notice_opt_outs"`
	// LoanHistory is the patron's choice about their returned loans, one
	// of HistoryChoices.
	LoanHistory *string `json:"loan_history"`
}

// SettingsFields names the fields of a SettingsChange, as an adapter
// receives them: all a patron may change of their record themselves.
var SettingsFields = []string{"preferred_email", "preferred_phone", "preferred_address", "sms", "preferred_language", "notice_opt_outs", "loan_history"}

// CheckFields refuses the fields named that a patron may not change
// themselves (any not in SettingsFields: their name, group, expiry...
// are the library's to change): Invalid, each such field named with code
// read_only, in order. It answers nil when every field is one of
// SettingsFields. An adapter that receives named fields (a JSON body, a
// form) asks it before it changes anything.
func CheckFields(names []string) error {
	var refused []fault.FieldError
	for _, k := range names {
		if !slices.Contains(SettingsFields, k) {
			refused = append(refused, fault.FieldError{Field: k, Code: "read_only", Message: "a patron cannot change it here; the library can"})
		}
	}
	if len(refused) == 0 {
		return nil
	}
	slices.SortFunc(refused, func(x, y fault.FieldError) int { return strings.Compare(x.Field, y.Field) })
	return &fault.Error{Kind: fault.Invalid, Detail: "only your contact preferences, language and notices can be changed here", Fields: refused}
}

// Settings answers the patron's settings.
func (s *Service) Settings(ctx context.Context, inst, primaryID string) (*Settings, error) {
	u, err := s.patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	return s.settingsOf(ctx, inst, u)
}

func (s *Service) settingsOf(ctx context.Context, inst string, u *patron.User) (*Settings, error) {
	out := &Settings{Emails: []Contact{}, Phones: []Contact{}, Addresses: []Contact{}, PreferredLanguage: u.PreferredLanguage,
		OptionalNotices: circulation.OptionalNotices, Version: u.Version}
	for _, e := range u.Emails {
		out.Emails = append(out.Emails, Contact{ID: e.ID, Value: e.EmailAddress, Preferred: e.Preferred})
	}
	for _, p := range u.Phones {
		out.Phones = append(out.Phones, Contact{ID: p.ID, Value: p.PhoneNumber, Preferred: p.Preferred, PreferredSMS: p.PreferredSMS})
		out.SMS = out.SMS || p.PreferredSMS
	}
	for _, ad := range u.Addresses {
		v := strings.Join(slices.DeleteFunc([]string{ad.Line1, ad.Line2, ad.City, ad.PostalCode, ad.Country}, func(s string) bool { return s == "" }), ", ")
		out.Addresses = append(out.Addresses, Contact{ID: ad.ID, Value: v, Preferred: ad.Preferred})
	}
	var err error
	out.NoticeOptOuts, err = s.circ.NoticeOptOuts(ctx, inst, u.PrimaryID)
	if err != nil {
		return nil, err
	}
	out.LoanHistoryChoices = HistoryChoices
	if out.LoanHistory, err = s.historyChoice(ctx, inst, u.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// ChangeSettings changes what a patron may change of their own record:
// which of their email addresses, phones and addresses is preferred,
// whether notices come by SMS (to their preferred phone, which SMS then
// follows when another phone becomes preferred), their language, and the
// notices they opt out of, and their choice about their loan history. It answers the settings as they are then.
//
// A contact id that is not one of the patron's, SMS without a preferred
// phone, or a notice kind one may not opt out of is Invalid, each field
// named (notice_opt_outs[i] for a kind), and nothing changes. The record
// is written first, then the opt-outs.
func (s *Service) ChangeSettings(ctx context.Context, inst, primaryID string, in SettingsChange) (*Settings, error) {
	u, err := s.patrons.Get(ctx, inst, primaryID)
	if err != nil {
		return nil, err
	}
	var bad []fault.FieldError
	choose := func(field string, id *string, n int, idOf func(int) string, set func(int, bool)) {
		if id == nil {
			return
		}
		found := -1
		for i := range n {
			if idOf(i) == *id {
				found = i
			}
		}
		if found < 0 {
			bad = append(bad, fault.FieldError{Field: field, Code: "unknown_value", Message: "is not the id of one of yours"})
			return
		}
		for i := range n {
			set(i, i == found)
		}
	}
	choose("preferred_email", in.PreferredEmail, len(u.Emails), func(i int) string { return u.Emails[i].ID }, func(i int, v bool) { u.Emails[i].Preferred = v })
	sms := slices.ContainsFunc(u.Phones, func(p patron.Phone) bool { return p.PreferredSMS })
	choose("preferred_phone", in.PreferredPhone, len(u.Phones), func(i int) string { return u.Phones[i].ID }, func(i int, v bool) {
		u.Phones[i].Preferred = v
		u.Phones[i].PreferredSMS = sms && v // SMS follows the preferred phone
	})
	choose("preferred_address", in.PreferredAddress, len(u.Addresses), func(i int) string { return u.Addresses[i].ID }, func(i int, v bool) { u.Addresses[i].Preferred = v })
	if in.SMS != nil {
		pref := slices.IndexFunc(u.Phones, func(p patron.Phone) bool { return p.Preferred })
		if *in.SMS && pref < 0 {
			bad = append(bad, fault.FieldError{Field: "sms", Code: "unknown_value", Message: "needs a preferred phone"})
		}
		for i := range u.Phones {
			u.Phones[i].PreferredSMS = *in.SMS && i == pref
		}
	}
	if in.PreferredLanguage != nil {
		u.PreferredLanguage = strings.TrimSpace(*in.PreferredLanguage)
	}
	if in.LoanHistory != nil {
		*in.LoanHistory = strings.ToLower(strings.TrimSpace(*in.LoanHistory))
		switch {
		case !slices.Contains(HistoryChoices, *in.LoanHistory):
			bad = append(bad, fault.FieldError{Field: "loan_history", Code: "unknown_value", Message: "must be one of: " + strings.Join(HistoryChoices, ", ")})
		case s.history == nil:
			bad = append(bad, fault.FieldError{Field: "loan_history", Code: "read_only", Message: "the library keeps no choice about loan history here"})
		}
	}
	if len(bad) > 0 {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: "the settings are not valid", Fields: bad}
	}
	if in.NoticeOptOuts != nil {
		// Checked before the record changes, so that a bad kind changes
		// nothing.
		for i, k := range *in.NoticeOptOuts {
			if !slices.Contains(circulation.OptionalNotices, strings.ToLower(strings.TrimSpace(k))) {
				bad = append(bad, fault.FieldError{Field: "notice_opt_outs[" + strconv.Itoa(i) + "]", Code: "unknown_value",
					Message: "must be one of: " + strings.Join(circulation.OptionalNotices, ", ")})
			}
		}
		if len(bad) > 0 {
			return nil, &fault.Error{Kind: fault.Invalid, Detail: "the settings are not valid", Fields: bad}
		}
	}
	// The record and the opt-outs change together or not at all.
	err = txctx.Transaction(ctx, s.db, func(ctx context.Context, _ *gorm.DB) error {
		if in.PreferredEmail != nil || in.PreferredPhone != nil || in.PreferredAddress != nil || in.SMS != nil || in.PreferredLanguage != nil {
			if u, err = s.patrons.Replace(ctx, inst, u.PrimaryID, u.Version, u); err != nil {
				return err
			}
		}
		if in.NoticeOptOuts != nil {
			if _, err := s.circ.SetNoticeOptOuts(ctx, inst, u.PrimaryID, *in.NoticeOptOuts); err != nil {
				return err
			}
		}
		if in.LoanHistory != nil {
			return s.history.SetHistoryChoice(ctx, inst, u.ID, *in.LoanHistory)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.settingsOf(ctx, inst, u)
}
