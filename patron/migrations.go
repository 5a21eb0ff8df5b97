package patron

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations returns the versioned schema changes of the patron tables, in
// order. The kit runs them (with those of the other modules) under a lock.
//
// The first migration creates the tables from the models as they stand;
// every later change must be a migration of its own that names its columns
// explicitly, so that a database created long ago and one created today
// end up the same.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202611270001_patron_users",
		Migrate: func(tx *gorm.DB) error {
			m := tx.Migrator()
			tables := append([]any{&User{}, &FieldOverride{}, &SignInFailures{}}, segmentModels...)
			for _, t := range tables {
				if err := m.CreateTable(t); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE UNIQUE INDEX pk_users_primary_id ON pk_users (institution, primary_id_key)",
				"CREATE INDEX pk_users_names ON pk_users (institution, last_name, first_name)",
				"CREATE INDEX pk_users_group ON pk_users (institution, user_group)",
				"CREATE UNIQUE INDEX pk_user_identifiers_value ON pk_user_identifiers (institution, id_type, value_key)",
				"CREATE INDEX pk_user_emails_address ON pk_user_emails (email_address)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			tables := append([]any{&User{}, &FieldOverride{}, &SignInFailures{}}, segmentModels...)
			return tx.Migrator().DropTable(tables...)
		},
	}, {
		ID: "202611270003_patron_attachments",
		Migrate: func(tx *gorm.DB) error {
			m := tx.Migrator()
			for _, t := range []any{&attachmentV1{}, &attachmentContentV1{}} {
				if err := m.CreateTable(t); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE INDEX pk_user_attachments_user ON pk_user_attachments (user_id, created_date)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&attachmentContentV1{}, &attachmentV1{})
		},
	}, {
		ID: "202611270004_patron_sis_hash",
		Migrate: func(tx *gorm.DB) error {
			// Databases created after this column joined the model have it
			// from the first migration already.
			if tx.Migrator().HasColumn("pk_users", "sis_hash") {
				return nil
			}
			return tx.Exec("ALTER TABLE pk_users ADD COLUMN sis_hash VARCHAR(64)").Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Exec("ALTER TABLE pk_users DROP COLUMN sis_hash").Error },
	}, {
		ID:       "202611270005_patron_code_labels",
		Migrate:  func(tx *gorm.DB) error { return tx.Migrator().CreateTable(&codeLabelV1{}) },
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&codeLabelV1{}) },
	}, {
		// The folded keys are compared byte for byte on MySQL: its default
		// collation would also take "josé" and "jose" for one primary id
		// (the folding in Go already makes case not count).
		ID: "202611270006_patron_binary_keys",
		Migrate: func(tx *gorm.DB) error {
			if tx.Dialector.Name() != "mysql" {
				return nil
			}
			return execAll(tx,
				"ALTER TABLE pk_users MODIFY primary_id_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
				"ALTER TABLE pk_user_identifiers MODIFY value_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
			)
		},
	}, {
		// Failed sign-ins are counted per account and source, and per
		// account from all sources; the counts are short-lived, so the
		// old table (per account only) is replaced, not converted.
		ID: "202612010001_patron_signin_sources",
		Migrate: func(tx *gorm.DB) error {
			// A plain DROP: GORM's DropTable takes a connection of its
			// own on MySQL, which the locked migration run cannot give.
			if err := tx.Exec("DROP TABLE pk_signin_failures").Error; err != nil {
				return err
			}
			if err := tx.Migrator().CreateTable(&signInFailuresV2{}); err != nil {
				return err
			}
			stmts := []string{"CREATE INDEX pk_signin_failures_last ON pk_signin_failures (last_failed_at)"}
			if tx.Dialector.Name() == "mysql" {
				stmts = append(stmts, "ALTER TABLE pk_signin_failures MODIFY primary_id_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL")
			}
			return execAll(tx, stmts...)
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Exec("DROP TABLE pk_signin_failures").Error; err != nil {
				return err
			}
			return tx.Migrator().CreateTable(&signInFailuresV1{})
		},
	}}
}

// signInFailuresV1 is the table of failed sign-ins as migration
// 202611270001 created it: one count per account.
type signInFailuresV1 struct {
	Institution  string    `gorm:"primaryKey;size:64"`
	PrimaryIDKey string    `gorm:"primaryKey;size:255"`
	Failures     int       `gorm:"not null"`
	LockedUntil  time.Time `gorm:"not null"`
}

func (signInFailuresV1) TableName() string { return "pk_signin_failures" }

// signInFailuresV2 is the table of failed sign-ins as migration
// 202612010001 creates it: per account and source ("*" for all sources).
type signInFailuresV2 struct {
	Institution  string    `gorm:"primaryKey;size:64"`
	PrimaryIDKey string    `gorm:"primaryKey;size:255"`
	SourceKey    string    `gorm:"primaryKey;size:64"`
	Failures     int       `gorm:"not null"`
	LastFailedAt time.Time `gorm:"not null"`
	LockedUntil  time.Time `gorm:"not null"`
}

func (signInFailuresV2) TableName() string { return "pk_signin_failures" }

// codeLabelV1 is the code label table as migration 202611270005 creates it.
type codeLabelV1 struct {
	Institution string `gorm:"primaryKey;size:64"`
	CodeTable   string `gorm:"primaryKey;size:64"`
	Code        string `gorm:"primaryKey;size:128"`
	Description string `gorm:"size:255"`
	UpdatedAt   time.Time
}

func (codeLabelV1) TableName() string { return "pk_code_labels" }

// attachmentV1 and attachmentContentV1 are the attachment tables as
// migration 202611270003 creates them, whatever Attachment and
// attachmentContent become later.
type attachmentV1 struct {
	ID          string    `gorm:"primaryKey;size:36"`
	UserID      string    `gorm:"size:36;not null"`
	FileName    string    `gorm:"size:255;not null"`
	ContentType string    `gorm:"size:127;not null"`
	Size        int64     `gorm:"not null"`
	Kind        string    `gorm:"size:16;not null"`
	Description string    `gorm:"size:255"`
	CreatedBy   string    `gorm:"size:255;not null"`
	CreatedDate time.Time `gorm:"not null"`
}

func (attachmentV1) TableName() string { return "pk_user_attachments" }

// attachmentContentV1's size makes GORM choose LONGBLOB on MySQL (a BLOB
// holds only 64 KiB), bytea on PostgreSQL and BLOB on SQLite.
type attachmentContentV1 struct {
	AttachmentID string `gorm:"primaryKey;size:36"`
	Content      []byte `gorm:"size:4294967295;not null"`
}

func (attachmentContentV1) TableName() string { return "pk_user_attachment_contents" }

func execAll(tx *gorm.DB, stmts ...string) error {
	for _, s := range stmts {
		if err := tx.Exec(s).Error; err != nil {
			return err
		}
	}
	return nil
}
