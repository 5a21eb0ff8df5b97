package sis

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations returns the schema changes of the SIS tables, in order.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202611270101_sis_profiles_runs",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&profileV1{}, &runV1{}, &outcomeV1{}, &leaseV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			return tx.Exec("CREATE INDEX pk_sis_runs_profile ON pk_sis_runs (institution, profile, id)").Error
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&outcomeV1{}, &runV1{}, &leaseV1{}, &profileV1{})
		},
	}, {
		// Profiles allow staff records or not (allow_staff). A profile
		// that already gave its users the record type STAFF by default
		// was set up to make staff: it keeps doing so.
		ID: "202611280103_sis_profiles_allow_staff",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&profileAllowStaffV2{}, "AllowStaff"); err != nil {
				return err
			}
			return tx.Model(&profileAllowStaffV2{}).Where("record_type = ?", "STAFF").Update("allow_staff", true).Error
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropColumn(&profileAllowStaffV2{}, "AllowStaff")
		},
	}}
}

// profileAllowStaffV2 is the column migration 202611280103 adds.
type profileAllowStaffV2 struct {
	AllowStaff bool `gorm:"not null;default:false"`
}

func (profileAllowStaffV2) TableName() string { return "pk_sis_profiles" }

// The tables as migration 202611270101 creates them, whatever the models
// become later.

type profileV1 struct {
	Institution       string `gorm:"primaryKey;size:64"`
	Code              string `gorm:"primaryKey;size:64"`
	Description       string `gorm:"size:255"`
	Source            string `gorm:"size:64;not null"`
	Format            string `gorm:"size:16"`
	Mode              string `gorm:"size:16;not null"`
	MatchBy           string `gorm:"size:64;not null"`
	Unmatched         string `gorm:"size:16;not null"`
	RecordType        string `gorm:"size:16"`
	ExpiryRule        string `gorm:"size:16;not null"`
	ExpiryDate        string `gorm:"size:10"`
	ExpiryDays        int
	PurgeRule         string `gorm:"size:16;not null"`
	PurgeDate         string `gorm:"size:10"`
	PurgeDays         int
	Schedule          string `gorm:"size:128"`
	TimeZone          string `gorm:"size:64"`
	DeactivateMissing bool
	LastScheduledAt   *time.Time
	Version           int `gorm:"not null"`
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (profileV1) TableName() string { return "pk_sis_profiles" }

type runV1 struct {
	ID          string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	Profile     string `gorm:"size:64;not null"`
	Status      string `gorm:"size:16;not null"`
	Trigger     string `gorm:"size:16;not null"`
	DryRun      bool
	Files       string `gorm:"size:2000"`
	Done        int
	Total       int
	BytesRead   int64
	BytesTotal  int64
	Created     int
	Updated     int
	Unchanged   int
	Rejected    int
	Failed      int
	Deactivated int
	Error       string `gorm:"size:2000"`
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

func (runV1) TableName() string { return "pk_sis_runs" }

type outcomeV1 struct {
	RunID     string `gorm:"primaryKey;size:36"`
	Seq       int    `gorm:"primaryKey;autoIncrement:false"`
	File      string `gorm:"size:255"`
	Ref       string `gorm:"size:255"`
	PrimaryID string `gorm:"size:255"`
	Outcome   string `gorm:"size:16;not null"`
	Reason    string `gorm:"size:2000"`
	Changes   string `gorm:"size:2000"`
}

func (outcomeV1) TableName() string { return "pk_sis_outcomes" }

type leaseV1 struct {
	Institution string    `gorm:"primaryKey;size:64"`
	Profile     string    `gorm:"primaryKey;size:64"`
	Holder      string    `gorm:"size:128;not null"`
	ExpiresAt   time.Time `gorm:"not null"`
}

func (leaseV1) TableName() string { return "pk_sis_leases" }
