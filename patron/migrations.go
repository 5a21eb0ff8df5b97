package patron

import (
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
	}}
}

func execAll(tx *gorm.DB, stmts ...string) error {
	for _, s := range stmts {
		if err := tx.Exec(s).Error; err != nil {
			return err
		}
	}
	return nil
}
