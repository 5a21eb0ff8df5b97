// Package dberr recognizes database errors whatever the dialect and
// whatever the host's *gorm.DB settings (TranslateError may be off), and
// turns those a caller can act on into the modules' own errors.
package dberr

import (
	"errors"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
)

// Translate returns err as a module returns it: a unique-key violation
// (see Duplicate) becomes a fault.Conflict saying detail; nil, a
// *fault.Error and any other error are returned as they are.
func Translate(db *gorm.DB, err error, detail string) error {
	if err == nil {
		return nil
	}
	if _, ok := fault.As(err); ok {
		return err
	}
	if Duplicate(db, err) {
		return &fault.Error{Kind: fault.Conflict, Detail: detail}
	}
	return err
}

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
