package patron

import (
	"context"
	"sort"
	"time"

	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/internal/txctx"
)

// CodeLabel is one row of a code table: the description of a code that a
// code field holds (user group 08 is "Staff"). User records hold codes
// only; the labels come from the SIS's files (Alma's desc attributes) or a
// host.
type CodeLabel struct {
	Institution string    `json:"-" gorm:"primaryKey;size:64"`
	CodeTable   string    `json:"-" gorm:"primaryKey;size:64"`
	Code        string    `json:"code" gorm:"primaryKey;size:128"`
	Description string    `json:"description" gorm:"size:255"`
	UpdatedAt   time.Time `json:"updated_date"`
}

// TableName implements gorm's Tabler.
func (CodeLabel) TableName() string { return "pk_code_labels" }

// SaveLabels writes code labels, replacing the description of codes known
// already. The last label of a code in labels wins. Labels with an empty
// part, or with text that breaks the text rule (see TextError), are
// passed over.
func (s *Service) SaveLabels(ctx context.Context, inst string, labels []CodeLabel) error {
	byKey := map[[2]string]CodeLabel{}
	now := s.clock()
	for _, l := range labels {
		if l.CodeTable == "" || l.Code == "" || l.Description == "" || !Findable(l.CodeTable, l.Code, l.Description) {
			continue // nothing to label, or text no database keeps
		}
		l.Institution, l.UpdatedAt = inst, now
		l.Code, l.Description = clipRunes(l.Code, 128), clipRunes(l.Description, 255)
		byKey[[2]string{l.CodeTable, l.Code}] = l
	}
	if len(byKey) == 0 {
		return nil
	}
	rows := make([]CodeLabel, 0, len(byKey))
	for _, l := range byKey {
		rows = append(rows, l)
	}
	sort.Slice(rows, func(i, j int) bool { // a stable order: no deadlocks between runs
		return rows[i].CodeTable < rows[j].CodeTable || rows[i].CodeTable == rows[j].CodeTable && rows[i].Code < rows[j].Code
	})
	s.labels.forget(inst)
	txctx.AfterCommit(ctx, func() { s.labels.forget(inst) })
	return s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "institution"}, {Name: "code_table"}, {Name: "code"}},
		DoUpdates: clause.AssignmentColumns([]string{"description", "updated_at"}),
	}).CreateInBatches(rows, 200).Error
}

// CodeTable lists the labels of one code table of an institution, by code.
func (s *Service) CodeTable(ctx context.Context, inst, table string) ([]CodeLabel, error) {
	out := []CodeLabel{}
	err := s.conn(ctx).Where("institution = ? AND code_table = ?", inst, table).Order("code").Find(&out).Error
	return out, err
}

// CodeTables names the code tables an institution has labels for.
func (s *Service) CodeTables(ctx context.Context, inst string) ([]string, error) {
	out := []string{}
	err := s.conn(ctx).Model(&CodeLabel{}).Where("institution = ?", inst).Distinct().Order("code_table").Pluck("code_table", &out).Error
	return out, err
}

// clipRunes shortens s to at most n runes.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// CodeLabels lists the labels of every code table of an institution, by
// table and code: what a writer of Alma's formats needs to describe each
// code of a record in one read. An instance keeps them in memory for
// Options.CodeLabelsCacheFor: SaveLabels through it takes effect at once,
// another instance's after that time.
func (s *Service) CodeLabels(ctx context.Context, inst string) ([]CodeLabel, error) {
	return s.labels.get(ctx, inst, s.clock(), func() ([]CodeLabel, error) {
		out := []CodeLabel{}
		err := s.conn(ctx).Where("institution = ?", inst).Order("code_table, code").Find(&out).Error
		return out, err
	})
}
