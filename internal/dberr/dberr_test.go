package dberr_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/dberr"
	"github.com/patronkit/patronkit/internal/dbtest"
)

type row struct {
	ID string `gorm:"primaryKey;size:36"`
}

func TestDuplicateKeysAreRecognizedOnEveryDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		// The host's own settings: no error translation.
		raw := db.Session(&gorm.Session{})
		raw.Config.TranslateError = false
		if err := raw.Migrator().CreateTable(&row{}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Create(&row{ID: "a"}).Error; err != nil {
			t.Fatal(err)
		}
		err := raw.Create(&row{ID: "a"}).Error
		if !dberr.Duplicate(raw, err) {
			t.Fatalf("a second row with the same key: %v not recognized", err)
		}
		if dberr.Duplicate(raw, errors.New("connection refused")) || dberr.Duplicate(raw, nil) {
			t.Fatal("other errors are not duplicates")
		}
	})
}

func TestTranslateMakesADuplicateKeyAConflict(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		raw := db.Session(&gorm.Session{})
		raw.Config.TranslateError = false
		if err := raw.Migrator().CreateTable(&row{}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Create(&row{ID: "a"}).Error; err != nil {
			t.Fatal(err)
		}
		err := dberr.Translate(raw, raw.Create(&row{ID: "a"}).Error, "row a is taken")
		if e, ok := fault.As(err); !ok || e.Kind != fault.Conflict || e.Detail != "row a is taken" {
			t.Fatalf("a second row with the same key: %v, want a Conflict saying so", err)
		}
		refused := &fault.Error{Kind: fault.Refused, Detail: "no"}
		other := errors.New("connection refused")
		if dberr.Translate(raw, refused, "x") != refused || dberr.Translate(raw, other, "x") != other || dberr.Translate(raw, nil, "x") != nil {
			t.Fatal("other errors are returned as they are")
		}
	})
}
