package circulation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
	"github.com/patronkit/patronkit/patron"
)

// Units of loan, renewal and grace periods.
const (
	Minutes = "minutes"
	Hours   = "hours"
	Days    = "days"
	Weeks   = "weeks"
)

// Units that overdue fines are charged per.
const (
	PerDay  = "day"
	PerHour = "hour"
)

// Any is the wildcard of a rule's conditions; an empty condition matches
// anything too.
const Any = "*"

// Rule is one rule of an institution's terms of use: when its conditions
// all match a loan, its Terms apply. Rules are tried in order and the first
// that matches wins, so the specific ones come first and a catch-all last.
type Rule struct {
	// Name describes the rule for staff (e.g. "Faculty: end of semester").
	Name string `json:"name,omitempty"`
	// UserGroup, ItemPolicy, Library and MaterialType are the conditions:
	// a code the user's group, the item's policy, its library or its
	// material type must equal (case does not count), or empty or "*" for
	// any.
	UserGroup    string `json:"user_group,omitempty"`
	ItemPolicy   string `json:"item_policy,omitempty"`
	Library      string `json:"library,omitempty"`
	MaterialType string `json:"material_type,omitempty"`
	// Terms are what a loan matching the conditions gets.
	Terms Terms `json:"terms"`
}

// Terms are the terms of use of a loan. Money is in integer minor units
// (cents) of Currency.
type Terms struct {
	// LoanPeriod and LoanPeriodUnit (minutes, hours, days or weeks) give
	// how long a loan lasts; a loan in days or weeks is due at 23:59 of its
	// last day in the library's time zone. Either these or FixedDueDate.
	LoanPeriod     int    `json:"loan_period,omitempty"`
	LoanPeriodUnit string `json:"loan_period_unit,omitempty"`
	// FixedDueDate (YYYY-MM-DD) makes every loan due at 23:59 that day in
	// the library's time zone, however long it lasts: the end of semester.
	FixedDueDate string `json:"fixed_due_date,omitempty"`

	// Renewals is how many times a loan may be renewed; 0: never.
	Renewals int `json:"renewals"`
	// RenewalPeriod and RenewalPeriodUnit give how much longer a renewal
	// makes a loan; 0 renews by the loan period (or to the fixed due date).
	RenewalPeriod     int    `json:"renewal_period,omitempty"`
	RenewalPeriodUnit string `json:"renewal_period_unit,omitempty"`

	// OverdueFine is charged per OverdueFineUnit (day or hour) that a loan
	// is overdue, once the GracePeriod (in GracePeriodUnit) has passed;
	// MaxFine caps the fine of one loan (0: no cap but Options.MaxFee).
	// Every amount of the terms is at most Options.MaxFee.
	OverdueFine     int64  `json:"overdue_fine"`
	OverdueFineUnit string `json:"overdue_fine_unit,omitempty"`
	GracePeriod     int    `json:"grace_period,omitempty"`
	GracePeriodUnit string `json:"grace_period_unit,omitempty"`
	MaxFine         int64  `json:"max_fine,omitempty"`
	// LostItemFee is charged when an item is declared lost, which happens
	// DaysOverdueUntilLost days after it was due (0: never by itself).
	LostItemFee          int64 `json:"lost_item_fee,omitempty"`
	DaysOverdueUntilLost int   `json:"days_overdue_until_lost,omitempty"`
	// Currency is the ISO 4217 code of the amounts (USD, EUR), one of the
	// currencies the library accepts (Options.Currencies); required when
	// any amount is not zero.
	Currency string `json:"currency,omitempty"`

	// MaxLoans is how many loans a user may have at once under this rule;
	// 0: no limit.
	MaxLoans int `json:"max_loans,omitempty"`
	// RequestsAllowed tells whether users may place requests (holds) on
	// the items.
	RequestsAllowed bool `json:"requests_allowed"`
	// PickupAnyLibrary lets a request be picked up at any library; when
	// false, only at the library that owns the item.
	PickupAnyLibrary bool `json:"pickup_any_library,omitempty"`
	// PersonalDelivery lets a request be delivered to one of the patron's
	// addresses, for DeliveryFee (in minor units of Currency).
	PersonalDelivery bool  `json:"personal_delivery,omitempty"`
	DeliveryFee      int64 `json:"delivery_fee,omitempty"`
	// HoldShelfDays is how long a requested item waits on the hold shelf
	// for its patron; 0: 7 days.
	HoldShelfDays int `json:"hold_shelf_days,omitempty"`
}

// RuleSet is the ordered list of an institution's terms of use rules, with
// its version: ReplaceRules must name the version it was based on.
type RuleSet struct {
	// Version counts the replacements; 0 while the institution has no
	// rules yet.
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`
	// BlockLimits are the limits past which patrons are blocked
	// automatically, per user group (see BlockLimit).
	BlockLimits []BlockLimit `json:"block_limits"`
	UpdatedAt   time.Time    `json:"updated_date,omitzero"`
}

// ruleSetRow holds the version of an institution's rules.
type ruleSetRow struct {
	Institution string `gorm:"primaryKey;size:64"`
	Version     int    `gorm:"not null"`
	UpdatedAt   time.Time
}

func (ruleSetRow) TableName() string { return "pk_circ_rule_sets" }

// ruleRow is how a rule is stored, its terms in columns of their own.
type ruleRow struct {
	ID                   string `gorm:"primaryKey;size:36"`
	Institution          string `gorm:"size:64;not null"`
	Position             int    `gorm:"not null"`
	Name                 string `gorm:"size:255"`
	UserGroup            string `gorm:"size:64"`
	ItemPolicy           string `gorm:"size:64"`
	Library              string `gorm:"size:64"`
	MaterialType         string `gorm:"size:64"`
	LoanPeriod           int
	LoanPeriodUnit       string `gorm:"size:16"`
	FixedDueDate         string `gorm:"size:10"`
	Renewals             int
	RenewalPeriod        int
	RenewalPeriodUnit    string `gorm:"size:16"`
	OverdueFine          int64
	OverdueFineUnit      string `gorm:"size:16"`
	GracePeriod          int
	GracePeriodUnit      string `gorm:"size:16"`
	MaxFine              int64
	LostItemFee          int64
	DaysOverdueUntilLost int
	Currency             string `gorm:"size:3"`
	MaxLoans             int
	RequestsAllowed      bool
	PickupAnyLibrary     bool  `gorm:"not null;default:false"`
	PersonalDelivery     bool  `gorm:"not null;default:false"`
	DeliveryFee          int64 `gorm:"not null;default:0"`
	HoldShelfDays        int   `gorm:"not null;default:0"`
}

func (ruleRow) TableName() string { return "pk_circ_rules" }

func (r ruleRow) rule() Rule {
	return Rule{Name: r.Name, UserGroup: r.UserGroup, ItemPolicy: r.ItemPolicy, Library: r.Library, MaterialType: r.MaterialType,
		Terms: Terms{
			LoanPeriod: r.LoanPeriod, LoanPeriodUnit: r.LoanPeriodUnit, FixedDueDate: r.FixedDueDate,
			Renewals: r.Renewals, RenewalPeriod: r.RenewalPeriod, RenewalPeriodUnit: r.RenewalPeriodUnit,
			OverdueFine: r.OverdueFine, OverdueFineUnit: r.OverdueFineUnit, GracePeriod: r.GracePeriod, GracePeriodUnit: r.GracePeriodUnit,
			MaxFine: r.MaxFine, LostItemFee: r.LostItemFee, DaysOverdueUntilLost: r.DaysOverdueUntilLost, Currency: r.Currency,
			MaxLoans: r.MaxLoans, RequestsAllowed: r.RequestsAllowed,
			PickupAnyLibrary: r.PickupAnyLibrary, PersonalDelivery: r.PersonalDelivery, DeliveryFee: r.DeliveryFee, HoldShelfDays: r.HoldShelfDays,
		}}
}

func rowOf(inst string, pos int, r Rule) ruleRow {
	t := r.Terms
	return ruleRow{ID: keys.NewID(), Institution: inst, Position: pos, Name: r.Name,
		UserGroup: r.UserGroup, ItemPolicy: r.ItemPolicy, Library: r.Library, MaterialType: r.MaterialType,
		LoanPeriod: t.LoanPeriod, LoanPeriodUnit: t.LoanPeriodUnit, FixedDueDate: t.FixedDueDate,
		Renewals: t.Renewals, RenewalPeriod: t.RenewalPeriod, RenewalPeriodUnit: t.RenewalPeriodUnit,
		OverdueFine: t.OverdueFine, OverdueFineUnit: t.OverdueFineUnit, GracePeriod: t.GracePeriod, GracePeriodUnit: t.GracePeriodUnit,
		MaxFine: t.MaxFine, LostItemFee: t.LostItemFee, DaysOverdueUntilLost: t.DaysOverdueUntilLost, Currency: t.Currency,
		MaxLoans: t.MaxLoans, RequestsAllowed: t.RequestsAllowed,
		PickupAnyLibrary: t.PickupAnyLibrary, PersonalDelivery: t.PersonalDelivery, DeliveryFee: t.DeliveryFee, HoldShelfDays: t.HoldShelfDays,
	}
}

// maxRules is the most rules an institution may have.
const maxRules = 1000

func normalizeRule(r *Rule) {
	trim(&r.Name, &r.UserGroup, &r.ItemPolicy, &r.Library, &r.MaterialType)
	for _, p := range []*string{&r.UserGroup, &r.ItemPolicy, &r.Library, &r.MaterialType} {
		if *p == Any {
			*p = ""
		}
	}
	t := &r.Terms
	trim(&t.FixedDueDate)
	for _, p := range []*string{&t.LoanPeriodUnit, &t.RenewalPeriodUnit, &t.OverdueFineUnit, &t.GracePeriodUnit} {
		*p = strings.ToLower(strings.TrimSpace(*p))
	}
	t.Currency = strings.ToUpper(strings.TrimSpace(t.Currency))
}

func (s *Service) checkRule(c *checker, r *Rule) {
	c.record(r)
	c.text("name", r.Name, false, 255)
	c.text("user_group", r.UserGroup, false, 64)
	c.text("item_policy", r.ItemPolicy, false, 64)
	c.text("library", r.Library, false, 64)
	c.text("material_type", r.MaterialType, false, 64)
	t := &r.Terms
	units := []string{Minutes, Hours, Days, Weeks}
	switch {
	case t.FixedDueDate != "" && (t.LoanPeriod != 0 || t.LoanPeriodUnit != ""):
		c.add("terms.fixed_due_date", "bad_format", "give either a loan period or a fixed due date, not both")
	case t.FixedDueDate != "":
		c.date("terms.fixed_due_date", t.FixedDueDate, true)
	case t.LoanPeriod == 0 && t.LoanPeriodUnit == "":
		c.add("terms.loan_period", "required", "a loan period or a fixed due date is required")
	default:
		if t.LoanPeriod < 1 {
			c.add("terms.loan_period", "out_of_range", "is less than 1")
		}
		c.oneOf("terms.loan_period_unit", t.LoanPeriodUnit, units...)
	}
	c.min("terms.renewals", int64(t.Renewals), 0)
	c.min("terms.renewal_period", int64(t.RenewalPeriod), 0)
	if t.RenewalPeriod > 0 {
		c.oneOf("terms.renewal_period_unit", t.RenewalPeriodUnit, units...)
	} else {
		unitAlone(c, "terms.renewal_period", t.RenewalPeriodUnit)
	}
	c.fee("terms.overdue_fine", t.OverdueFine, 0, s.maxFee, t.Currency)
	if t.OverdueFine > 0 {
		c.oneOf("terms.overdue_fine_unit", t.OverdueFineUnit, PerDay, PerHour)
	} else {
		unitAlone(c, "terms.overdue_fine", t.OverdueFineUnit)
	}
	c.min("terms.grace_period", int64(t.GracePeriod), 0)
	if t.GracePeriod > 0 {
		c.oneOf("terms.grace_period_unit", t.GracePeriodUnit, units...)
	} else {
		unitAlone(c, "terms.grace_period", t.GracePeriodUnit)
	}
	c.fee("terms.max_fine", t.MaxFine, 0, s.maxFee, t.Currency)
	c.fee("terms.lost_item_fee", t.LostItemFee, 0, s.maxFee, t.Currency)
	c.min("terms.days_overdue_until_lost", int64(t.DaysOverdueUntilLost), 0)
	c.min("terms.max_loans", int64(t.MaxLoans), 0)
	c.fee("terms.delivery_fee", t.DeliveryFee, 0, s.maxFee, t.Currency)
	c.min("terms.hold_shelf_days", int64(t.HoldShelfDays), 0)
	if t.Currency != "" {
		s.currencies.check(c, "terms.currency", t.Currency)
	}
	if t.Currency == "" && (t.OverdueFine > 0 || t.MaxFine > 0 || t.LostItemFee > 0 || t.DeliveryFee > 0) {
		c.add("terms.currency", "required", "is required when an amount is given")
	}
}

// unitAlone refuses the unit of an amount that is not given: a rule that
// says "weeks" but no number of them is a mistake, not a default.
func unitAlone(c *checker, field, unit string) {
	if unit != "" {
		c.add(field+"_unit", "bad_format", "is given without %s", field[strings.LastIndex(field, ".")+1:])
	}
}

// Rules returns an institution's terms of use rules in order, with their
// version (0 and no rules when none were ever set).
func (s *Service) Rules(ctx context.Context, inst string) (RuleSet, error) {
	set, err := loadRules(s.conn(ctx), inst)
	if err != nil {
		return RuleSet{}, err
	}
	if set.BlockLimits, err = loadLimits(s.conn(ctx), inst); err != nil {
		return RuleSet{}, err
	}
	return set, nil
}

// loadRules reads the rules of an institution, without the block limits.
func loadRules(db *gorm.DB, inst string) (RuleSet, error) {
	set := RuleSet{Rules: []Rule{}, BlockLimits: []BlockLimit{}}
	var head ruleSetRow
	err := db.Where("institution = ?", inst).Take(&head).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return set, nil
	}
	if err != nil {
		return RuleSet{}, err
	}
	set.Version, set.UpdatedAt = head.Version, head.UpdatedAt
	if set.Rules, err = loadRuleList(db, inst); err != nil {
		return RuleSet{}, err
	}
	return set, nil
}

// loadRuleList reads the rules of an institution in order, without their
// version: what applying them needs (an institution without a version
// has no rules either, both being replaced in one transaction).
func loadRuleList(db *gorm.DB, inst string) ([]Rule, error) {
	var rows []ruleRow
	if err := db.Where("institution = ?", inst).Order("position").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.rule())
	}
	return out, nil
}

// ReplaceRules swaps an institution's whole terms of use for rules and
// limits (the block limits), each in the order given. version is the
// version the caller read (0 when there were none); terms changed since
// are Stale. Every rule and limit is checked first: one invalid entry
// refuses the whole, its fields named rules[i].terms.... or
// block_limits[i]....
func (s *Service) ReplaceRules(ctx context.Context, inst string, version int, rules []Rule, limits []BlockLimit) (RuleSet, error) {
	if len(rules) > maxRules {
		return RuleSet{}, &fault.Error{Kind: fault.Invalid, Detail: "the rules are not valid",
			Fields: []fault.FieldError{{Field: "rules", Code: "out_of_range", Message: fmt.Sprintf("an institution may have at most %d rules", maxRules)}}}
	}
	rs := make([]Rule, len(rules))
	var fields []fault.FieldError
	for i, r := range rules {
		normalizeRule(&r)
		c := checker{prefix: fmt.Sprintf("rules[%d].", i)}
		s.checkRule(&c, &r)
		fields = append(fields, c.fields...)
		rs[i] = r
	}
	if len(limits) > maxRules {
		fields = append(fields, fault.FieldError{Field: "block_limits", Code: "out_of_range", Message: fmt.Sprintf("an institution may have at most %d block limits", maxRules)})
		limits = nil
	}
	ls := make([]BlockLimit, len(limits))
	for i, l := range limits {
		normalizeLimit(&l)
		c := checker{prefix: fmt.Sprintf("block_limits[%d].", i)}
		s.checkLimit(&c, &l)
		fields = append(fields, c.fields...)
		ls[i] = l
	}
	if len(fields) > 0 {
		return RuleSet{}, &fault.Error{Kind: fault.Invalid, Detail: "the terms of use are not valid", Fields: fields}
	}
	var out RuleSet
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		now := s.clock()
		if version == 0 {
			var n int64
			if err := tx.Model(&ruleSetRow{}).Where("institution = ?", inst).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return stale("the rules were set since: read them again")
			}
			// Two first writes at once: the primary key lets one through.
			if err := tx.Create(&ruleSetRow{Institution: inst, Version: 1, UpdatedAt: now}).Error; err != nil {
				if errors.Is(s.translate(err), fault.ErrConflict) {
					return stale("the rules were set at the same time: read them again")
				}
				return err
			}
		} else {
			res := tx.Model(&ruleSetRow{}).Where("institution = ? AND version = ?", inst, version).
				Updates(map[string]any{"version": version + 1, "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return stale("the rules are not at version %d: read them again", version)
			}
		}
		if err := tx.Where("institution = ?", inst).Delete(&ruleRow{}).Error; err != nil {
			return err
		}
		if len(rs) > 0 {
			rows := make([]ruleRow, len(rs))
			for i, r := range rs {
				rows[i] = rowOf(inst, i, r)
			}
			if err := tx.CreateInBatches(&rows, 200).Error; err != nil {
				return err
			}
		}
		if err := tx.Where("institution = ?", inst).Delete(&blockLimitRow{}).Error; err != nil {
			return err
		}
		if len(ls) > 0 {
			rows := make([]blockLimitRow, len(ls))
			for i, l := range ls {
				rows[i] = limitRowOf(inst, i, l)
			}
			if err := tx.CreateInBatches(&rows, 200).Error; err != nil {
				return err
			}
		}
		out = RuleSet{Version: version + 1, Rules: rs, BlockLimits: ls, UpdatedAt: now}
		return nil
	})
	if err != nil {
		return RuleSet{}, s.translate(err)
	}
	return out, nil
}

func matches(cond, v string) bool {
	return cond == "" || cond == Any || strings.EqualFold(cond, strings.TrimSpace(v))
}

// Matches tells whether the rule's conditions all match a user group, item
// policy, library and material type.
func (r *Rule) Matches(userGroup, itemPolicy, library, materialType string) bool {
	return matches(r.UserGroup, userGroup) && matches(r.ItemPolicy, itemPolicy) &&
		matches(r.Library, library) && matches(r.MaterialType, materialType)
}

// TermsFor returns the terms of use that apply when user borrows item at
// the time at, and the due date such a loan would have, in UTC.
//
// The first rule whose conditions match the user's group and the item's
// policy, library and material type gives the terms; when none matches,
// the answer is Refused, naming the values that were matched. The due date
// is at plus the loan period; for a period in days or weeks it is 23:59 of
// the last day in the library's time zone, and a fixed due date is 23:59
// that day there. A due date on a day the library is closed moves to 23:59
// of the next open day (for a period in minutes or hours as well). A fixed
// due date already past at the time at is Refused. The item's library must
// be one of the institution's libraries (NotFound otherwise), also for
// items from a host's own catalog: its zone and calendar are read here.
func (s *Service) TermsFor(ctx context.Context, inst string, user *patron.User, item *Item, at time.Time) (Terms, time.Time, error) {
	q, err := s.Quote(ctx, inst, user, item, at)
	return q.Terms, q.DueAt, err
}

// Quote is what a loan would get: the terms of use, the due date and the
// rule that gives them.
type Quote struct {
	Terms Terms     `json:"terms"`
	DueAt time.Time `json:"due_date"`
	// Rule is the rule's name, or "rule N" (its place, from 1) when it
	// has none.
	Rule string `json:"rule"`
}

// Quote is TermsFor with the rule that matched.
func (s *Service) Quote(ctx context.Context, inst string, user *patron.User, item *Item, at time.Time) (Quote, error) {
	if user == nil || item == nil {
		return Quote{}, errors.New("circulation: TermsFor needs a user and an item")
	}
	db := s.conn(ctx)
	rules, err := loadRuleList(db, inst)
	if err != nil {
		return Quote{}, err
	}
	var rule *Rule
	pos := 0
	for i := range rules {
		if rules[i].Matches(user.UserGroup, item.ItemPolicy, item.Library, item.MaterialType) {
			rule, pos = &rules[i], i
			break
		}
	}
	if rule == nil {
		return Quote{}, refused("no terms of use apply to this loan", cause(ReasonNoRule,
			"user_group", user.UserGroup, "item_policy", item.ItemPolicy, "library", item.Library, "material_type", item.MaterialType))
	}
	lib, err := libraryRow(db, inst, item.Library)
	if err != nil {
		return Quote{}, s.translate(err)
	}
	name := rule.Name
	if name == "" {
		name = fmt.Sprintf("rule %d", pos+1)
	}
	due, err := dueDate(db, lib, rule.Terms, at)
	if err != nil {
		if pe, ok := fault.As(err); ok && pe.Kind == fault.Refused {
			pe.Because(cause(ReasonUnderRule, "rule", name))
		}
		return Quote{}, s.translate(err)
	}
	return Quote{Terms: rule.Terms, DueAt: due, Rule: name}, nil
}

// dueDate computes the due date of a loan made at at under t in library l.
func dueDate(db *gorm.DB, l *Library, t Terms, at time.Time) (time.Time, error) {
	loc, err := l.Location()
	if err != nil {
		return time.Time{}, fmt.Errorf("circulation: library %q: %w", l.Code, err)
	}
	local := at.In(loc)
	var due time.Time
	endOfDay := true
	switch {
	case t.FixedDueDate != "":
		d, err := time.ParseInLocation(time.DateOnly, t.FixedDueDate, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("circulation: fixed due date %q: %w", t.FixedDueDate, err)
		}
		due = d
		if endOf(d, loc).Before(at) {
			return time.Time{}, refused("the loan would be due in the past", cause(ReasonFixedDueDatePassed, "fixed_due_date", t.FixedDueDate))
		}
	case t.LoanPeriodUnit == Minutes:
		due, endOfDay = local.Add(time.Duration(t.LoanPeriod)*time.Minute), false
	case t.LoanPeriodUnit == Hours:
		due, endOfDay = local.Add(time.Duration(t.LoanPeriod)*time.Hour), false
	case t.LoanPeriodUnit == Days:
		due = local.AddDate(0, 0, t.LoanPeriod)
	case t.LoanPeriodUnit == Weeks:
		due = local.AddDate(0, 0, 7*t.LoanPeriod)
	default:
		return time.Time{}, fmt.Errorf("circulation: a rule has loan period unit %q", t.LoanPeriodUnit)
	}
	day := time.Date(due.Year(), due.Month(), due.Day(), 0, 0, 0, 0, loc)
	open, err := nextOpenDay(db, l, day)
	if err != nil {
		return time.Time{}, err
	}
	if endOfDay || !open.Equal(day) {
		return endOf(open, loc).UTC(), nil
	}
	return due.UTC(), nil
}

// endOf returns 23:59 of the civil day of d in loc.
func endOf(d time.Time, loc *time.Location) time.Time {
	d = d.In(loc)
	return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 0, 0, loc)
}
