// Package dberr recognizes database errors whatever the dialect and
// whatever the host's *gorm.DB settings (TranslateError may be off).
package dberr

import (
	"errors"

	"gorm.io/gorm"
)

// Duplicate reports whether err is a unique-key violation, as db's
// dialector translates it (PostgreSQL 23505, MySQL 1062, SQLite's UNIQUE
// constraint failure).
func Duplicate(db *gorm.DB, err error) bool {
	if err == nil {
		return false
	}
	if t, ok := db.Dialector.(gorm.ErrorTranslator); ok {
		err = t.Translate(err)
	}
	return errors.Is(err, gorm.ErrDuplicatedKey)
}
