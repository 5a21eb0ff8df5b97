package casbinmodel

import (
	"errors"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ruleStore is the Casbin adapter over the policy table patronkit owns
// (RuleTable): Casbin's persist.Adapter and persist.BatchAdapter, on the
// host's *gorm.DB and nothing else, so that a host's build carries only
// the database drivers it opens itself.
//
// Rules are matched column for column: removing ("p", a, b) removes that
// rule and not ("p", a, b, c). Adding a rule another instance added first
// is not an error (the unique index over every column keeps one copy).
type ruleStore struct {
	db *gorm.DB
}

var _ persist.BatchAdapter = (*ruleStore)(nil)

// maxRuleFields is how many values a rule row holds (v0..v5).
const maxRuleFields = 6

func ruleRow(ptype string, values []string) (rule, error) {
	if len(values) > maxRuleFields {
		return rule{}, errors.New("casbinmodel: a rule holds at most 6 values")
	}
	v := make([]string, maxRuleFields)
	copy(v, values)
	return rule{Ptype: ptype, V0: v[0], V1: v[1], V2: v[2], V3: v[3], V4: v[4], V5: v[5]}, nil
}

// values are the rule's non-empty values, trailing empty ones dropped.
func (r rule) values() []string {
	v := []string{r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
	for len(v) > 0 && v[len(v)-1] == "" {
		v = v[:len(v)-1]
	}
	return v
}

func (r rule) where(db *gorm.DB) *gorm.DB {
	return db.Table(RuleTable).Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ? AND v3 = ? AND v4 = ? AND v5 = ?",
		r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5)
}

// LoadPolicy reads every rule into m.
func (s *ruleStore) LoadPolicy(m model.Model) error {
	var rows []rule
	if err := s.db.Table(RuleTable).Order("id").Find(&rows).Error; err != nil {
		return err
	}
	for _, r := range rows {
		if err := persist.LoadPolicyArray(append([]string{r.Ptype}, r.values()...), m); err != nil {
			return err
		}
	}
	return nil
}

// SavePolicy replaces every rule with m's, in one transaction.
func (s *ruleStore) SavePolicy(m model.Model) error {
	var rows []rule
	for _, sec := range []string{"p", "g"} {
		for ptype, ast := range m[sec] {
			for _, values := range ast.Policy {
				r, err := ruleRow(ptype, values)
				if err != nil {
					return err
				}
				rows = append(rows, r)
			}
		}
	}
	return s.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Table(RuleTable).Where("1 = 1").Delete(&rule{}).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.Table(RuleTable).CreateInBatches(rows, 200).Error
	})
}

// AddPolicy adds one rule.
func (s *ruleStore) AddPolicy(_, ptype string, values []string) error {
	return s.AddPolicies("", ptype, [][]string{values})
}

// AddPolicies adds rules in one transaction; rules already held are kept
// once.
func (s *ruleStore) AddPolicies(_, ptype string, rules [][]string) error {
	return s.db.Transaction(func(tx *gorm.DB) error {
		for _, values := range rules {
			r, err := ruleRow(ptype, values)
			if err != nil {
				return err
			}
			// Another instance may add the same rule at the same moment:
			// the unique index keeps one, and the statement that loses
			// does nothing (a failed insert would end a PostgreSQL
			// transaction).
			if err := tx.Table(RuleTable).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePolicy removes one rule.
func (s *ruleStore) RemovePolicy(_, ptype string, values []string) error {
	return s.RemovePolicies("", ptype, [][]string{values})
}

// RemovePolicies removes rules in one transaction.
func (s *ruleStore) RemovePolicies(_, ptype string, rules [][]string) error {
	return s.db.Transaction(func(tx *gorm.DB) error {
		for _, values := range rules {
			r, err := ruleRow(ptype, values)
			if err != nil {
				return err
			}
			if err := r.where(tx).Delete(&rule{}).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveFilteredPolicy removes the rules of ptype whose values from
// fieldIndex on equal fieldValues; an empty value matches anything.
func (s *ruleStore) RemoveFilteredPolicy(_, ptype string, fieldIndex int, fieldValues ...string) error {
	if fieldIndex < 0 || fieldIndex+len(fieldValues) > maxRuleFields {
		return errors.New("casbinmodel: a filter names values past v5")
	}
	columns := []string{"v0", "v1", "v2", "v3", "v4", "v5"}
	q := s.db.Table(RuleTable).Where("ptype = ?", ptype)
	for i, v := range fieldValues {
		if v != "" {
			q = q.Where(columns[fieldIndex+i]+" = ?", v)
		}
	}
	return q.Delete(&rule{}).Error
}
