package privacy

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations returns the versioned schema changes of the privacy tables, in
// order. The kit runs them (with those of the other modules) under a lock.
//
// Each migration creates its tables from snapshot structs of its own, not
// from the models, so that a database created long ago and one created
// today end up the same.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202612042201_privacy_audit_trail",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&entryV1{}, &headV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			for _, q := range []string{
				"CREATE INDEX pk_privacy_audit_subject ON pk_privacy_audit (institution, subject)",
				"CREATE INDEX pk_privacy_audit_actor ON pk_privacy_audit (institution, actor_id)",
				"CREATE INDEX pk_privacy_audit_at ON pk_privacy_audit (institution, at_us)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&headV1{}, &entryV1{})
		},
	}, {
		// The searches of the trail by user or by actor (Search,
		// AccessLog) read the newest entries first: indexes ordered by
		// sequence number within the user and the actor let them read a
		// page without sorting every entry of the user first. They take
		// the place of the indexes on (institution, subject) and
		// (institution, actor_id), which they cover.
		ID: "202612050101_privacy_audit_search_indexes",
		Migrate: func(tx *gorm.DB) error {
			for _, q := range []string{
				"CREATE INDEX pk_privacy_audit_subject_seq ON pk_privacy_audit (institution, subject, seq)",
				"CREATE INDEX pk_privacy_audit_actor_seq ON pk_privacy_audit (institution, actor_id, seq)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			for _, name := range []string{"pk_privacy_audit_subject", "pk_privacy_audit_actor"} {
				if err := tx.Migrator().DropIndex(&entryV1{}, name); err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		// Retention: the reports of the anonymization runs, what an
		// anonymized record keeps of its patron, the lease that lets one
		// instance at a time anonymize an institution's records, the
		// patrons' choices about their loan history, and an index to find
		// the fees of a batch of loans.
		ID: "202612050201_privacy_retention",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&anonymizationRunV1{}, &anonymizedV1{}, &retentionLeaseV1{}, &historyChoiceV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			for _, q := range []string{
				"CREATE INDEX pk_privacy_anonymization_runs_inst ON pk_privacy_anonymization_runs (institution, started_at)",
				"CREATE INDEX pk_circ_fees_loan ON pk_circ_fees (institution, loan_id)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropIndex("pk_circ_fees", "pk_circ_fees_loan"); err != nil {
				return err
			}
			return tx.Migrator().DropTable(&historyChoiceV1{}, &retentionLeaseV1{}, &anonymizedV1{}, &anonymizationRunV1{})
		},
	}, {
		// Forgetting a user (Forget): the signed redactions of the
		// entries that no longer name them, and indexes that find a
		// user's entries in any case (MySQL's collation ignores case
		// already, and its indexes on subject and actor_id serve).
		ID: "202612050301_privacy_audit_redactions",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().CreateTable(&redactionV1{}); err != nil {
				return err
			}
			if tx.Dialector.Name() == "mysql" {
				return nil
			}
			for _, q := range []string{
				"CREATE INDEX pk_privacy_audit_subject_lower ON pk_privacy_audit (institution, LOWER(subject))",
				"CREATE INDEX pk_privacy_audit_actor_lower ON pk_privacy_audit (institution, LOWER(actor_id))",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			if tx.Dialector.Name() != "mysql" {
				for _, name := range []string{"pk_privacy_audit_subject_lower", "pk_privacy_audit_actor_lower"} {
					if err := tx.Migrator().DropIndex(&entryV1{}, name); err != nil {
						return err
					}
				}
			}
			return tx.Migrator().DropTable(&redactionV1{})
		},
	}, {
		// Legal holds on users (LegalHolds), which stop their deletion.
		ID: "202612050303_privacy_legal_holds",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&legalHoldV1{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&legalHoldV1{})
		},
	}, {
		// Purges (Purger): the runs' reports, what each did with each
		// user, the lease that lets one instance at a time purge an
		// institution, and an index to find the users past their purge
		// date.
		ID: "202612050501_privacy_purge_runs",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&purgeRunV1{}, &purgeOutcomeV1{}, &purgeLeaseV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			for _, q := range []string{
				"CREATE INDEX pk_privacy_purge_runs_inst ON pk_privacy_purge_runs (institution, started_at)",
				"CREATE INDEX pk_users_purge_date ON pk_users (institution, purge_date)",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropIndex("pk_users", "pk_users_purge_date"); err != nil {
				return err
			}
			return tx.Migrator().DropTable(&purgeLeaseV1{}, &purgeOutcomeV1{}, &purgeRunV1{})
		},
	}, {
		// Primary ids are the same whatever their case: the trail is
		// searched, and an erased user forgotten, by the user and the
		// actor in lower case. On PostgreSQL and SQLite the indexes
		// by user and by actor become indexes of those in lower case
		// (MySQL's collation already ignores case).
		ID: "202612060401_privacy_audit_case_free_indexes",
		Migrate: func(tx *gorm.DB) error {
			if tx.Dialector.Name() == "mysql" {
				return nil
			}
			for _, q := range []string{
				"CREATE INDEX pk_privacy_audit_subject_key ON pk_privacy_audit (institution, LOWER(subject), seq)",
				"CREATE INDEX pk_privacy_audit_actor_key ON pk_privacy_audit (institution, LOWER(actor_id), seq)",
				"DROP INDEX pk_privacy_audit_subject_seq",
				"DROP INDEX pk_privacy_audit_actor_seq",
			} {
				if err := tx.Exec(q).Error; err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		// A purge run can be asked to stop (Purger.Cancel), from any
		// instance: the run reads the request between batches.
		ID: "202612060402_privacy_purge_cancel",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().AddColumn(&purgeRunV2{}, "CancelRequested")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropColumn(&purgeRunV2{}, "CancelRequested")
		},
	}, {
		// An erasure renames the user in the outcomes of earlier purges
		// (a dry run's, one that kept them): an index by primary_id (in
		// lower case but on MySQL, whose collation ignores case) finds
		// them without reading every outcome.
		ID: "202612060403_privacy_purge_outcomes_by_user",
		Migrate: func(tx *gorm.DB) error {
			q := "CREATE INDEX pk_privacy_purge_outcomes_user ON pk_privacy_purge_outcomes (LOWER(primary_id))"
			if tx.Dialector.Name() == "mysql" {
				q = "CREATE INDEX pk_privacy_purge_outcomes_user ON pk_privacy_purge_outcomes (primary_id)"
			}
			return tx.Exec(q).Error
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropIndex("pk_privacy_purge_outcomes", "pk_privacy_purge_outcomes_user")
		},
	}, {
		// A purge may take a set of users as its input (Purger.PurgeSet):
		// the run names it.
		ID: "202612070503_privacy_purge_set",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().AddColumn(&purgeRunV3{}, "SetID")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropColumn(&purgeRunV3{}, "SetID")
		},
	}}
}

// purgeRunV3 is the column migration 202612070503 adds.
type purgeRunV3 struct {
	SetID string `gorm:"size:36;not null;default:''"`
}

func (purgeRunV3) TableName() string { return "pk_privacy_purge_runs" }

// The tables as migration 202612050501 creates them.

type purgeRunV1 struct {
	ID          string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	DryRun      bool   `gorm:"not null"`
	Status      string `gorm:"size:16;not null"`
	Instance    string `gorm:"size:128;not null"`
	NPurged     int64  `gorm:"column:n_purged;not null;default:0"`
	NKept       int64  `gorm:"column:n_kept;not null;default:0"`
	Error       string `gorm:"size:2000"`
	StartedAt   time.Time
	FinishedAt  *time.Time
}

func (purgeRunV1) TableName() string { return "pk_privacy_purge_runs" }

// purgeRunV2 is the run as migration 202612060402 leaves it.
type purgeRunV2 struct {
	purgeRunV1      `gorm:"embedded"`
	CancelRequested bool `gorm:"not null;default:false"`
}

func (purgeRunV2) TableName() string { return "pk_privacy_purge_runs" }

type purgeOutcomeV1 struct {
	RunID     string `gorm:"primaryKey;size:36"`
	Seq       int64  `gorm:"primaryKey;autoIncrement:false"`
	PrimaryID string `gorm:"size:255;not null"`
	Purged    bool   `gorm:"not null"`
	Waived    string `gorm:"type:text"`
	Reasons   string `gorm:"type:text"`
}

func (purgeOutcomeV1) TableName() string { return "pk_privacy_purge_outcomes" }

type purgeLeaseV1 struct {
	Institution string    `gorm:"primaryKey;size:64"`
	Holder      string    `gorm:"size:128;not null"`
	ExpiresAt   time.Time `gorm:"not null"`
}

func (purgeLeaseV1) TableName() string { return "pk_privacy_purge_leases" }

type legalHoldV1 struct {
	Institution string    `gorm:"primaryKey;size:64"`
	UserID      string    `gorm:"primaryKey;size:36"`
	Reason      string    `gorm:"size:1024;not null"`
	SetBy       string    `gorm:"size:255;not null"`
	SetAt       time.Time `gorm:"not null"`
}

func (legalHoldV1) TableName() string { return "pk_privacy_legal_holds" }

type redactionV1 struct {
	Institution  string `gorm:"primaryKey;size:64"`
	Seq          int64  `gorm:"primaryKey;autoIncrement:false"`
	Hash         string `gorm:"size:64;not null"`
	RedactedHash string `gorm:"size:64;not null"`
	AtUS         int64  `gorm:"column:at_us;not null"`
	Sig          string `gorm:"size:64;not null"`
}

func (redactionV1) TableName() string { return "pk_privacy_redactions" }

type entryV1 struct {
	Institution  string `gorm:"primaryKey;size:64"`
	Seq          int64  `gorm:"primaryKey;autoIncrement:false"`
	AtUS         int64  `gorm:"column:at_us;not null"`
	ActorID      string `gorm:"size:255;not null"`
	ActorKind    string `gorm:"size:16;not null"`
	ActorRoles   string `gorm:"size:1024;not null"`
	ActorLibrary string `gorm:"size:255;not null"`
	Action       string `gorm:"size:16;not null"`
	Subject      string `gorm:"size:255;not null"`
	What         string `gorm:"size:255;not null"`
	Details      string `gorm:"type:text;not null"`
	Via          string `gorm:"size:255;not null"`
	RequestID    string `gorm:"size:128;not null"`
	PrevHash     string `gorm:"size:64;not null"`
	Hash         string `gorm:"size:64;not null"`
}

func (entryV1) TableName() string { return "pk_privacy_audit" }

type headV1 struct {
	Institution    string `gorm:"primaryKey;size:64"`
	Seq            int64  `gorm:"not null"`
	Hash           string `gorm:"size:64;not null"`
	Sig            string `gorm:"size:64;not null"`
	CheckpointSeq  int64  `gorm:"not null"`
	CheckpointHash string `gorm:"size:64;not null"`
	CheckpointAtUS int64  `gorm:"column:checkpoint_at_us;not null"`
	CheckpointSig  string `gorm:"size:64;not null"`
}

func (headV1) TableName() string { return "pk_privacy_heads" }

// The tables as migration 202612050201 creates them.

type anonymizationRunV1 struct {
	ID           string `gorm:"primaryKey;size:36"`
	Institution  string `gorm:"size:64;not null"`
	DryRun       bool   `gorm:"not null"`
	Status       string `gorm:"size:16;not null"`
	Instance     string `gorm:"size:128;not null"`
	NLoans       int64  `gorm:"not null;default:0"`
	NFees        int64  `gorm:"not null;default:0"`
	NRequests    int64  `gorm:"not null;default:0"`
	NNotices     int64  `gorm:"not null;default:0"`
	NSISOutcomes int64  `gorm:"column:n_sis_outcomes;not null;default:0"`
	Error        string `gorm:"size:2000"`
	StartedAt    time.Time
	FinishedAt   *time.Time
}

func (anonymizationRunV1) TableName() string { return "pk_privacy_anonymization_runs" }

type anonymizedV1 struct {
	Kind                string `gorm:"primaryKey;size:16"`
	RecordID            string `gorm:"primaryKey;size:36"`
	Institution         string `gorm:"size:64;not null"`
	UserGroup           string `gorm:"size:64"`
	JobCategory         string `gorm:"size:255"`
	RecordType          string `gorm:"size:16"`
	AccountType         string `gorm:"size:16"`
	StatisticCategories string `gorm:"size:1000"`
	Pseudonym           string `gorm:"size:64"`
	AnonymizedAt        time.Time
}

func (anonymizedV1) TableName() string { return "pk_privacy_anonymized" }

type retentionLeaseV1 struct {
	Institution string    `gorm:"primaryKey;size:64"`
	Holder      string    `gorm:"size:128;not null"`
	ExpiresAt   time.Time `gorm:"not null"`
}

func (retentionLeaseV1) TableName() string { return "pk_privacy_retention_leases" }

type historyChoiceV1 struct {
	Institution string `gorm:"primaryKey;size:64"`
	UserID      string `gorm:"primaryKey;size:36"`
	Choice      string `gorm:"size:16;not null"`
	UpdatedAt   time.Time
}

func (historyChoiceV1) TableName() string { return "pk_privacy_history_choices" }
