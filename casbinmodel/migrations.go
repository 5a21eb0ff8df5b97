package casbinmodel

import (
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// rule is a row of the policy table (the columns of Casbin's GORM
// adapter, which earlier releases used, so existing tables read as they
// are), sized so that an action or an earlier release's path pattern fits
// (v2) and the unique index over all of them stays within MySQL's key
// length.
type rule struct {
	ID    uint   `gorm:"primaryKey;autoIncrement"`
	Ptype string `gorm:"size:16"`
	V0    string `gorm:"size:128"`
	V1    string `gorm:"size:64"`
	V2    string `gorm:"size:255"`
	V3    string `gorm:"size:64"`
	V4    string `gorm:"size:16"`
	V5    string `gorm:"size:16"`
}

// Migrations creates the policy table used by FromDB and upgrades the
// policies an earlier release seeded there: its URL lines become action
// lines (see POLICIES.md), and what a policy author changed is kept. A line
// that cannot be carried over is logged through the logger of the
// migration's context (patronkit's Kit.Migrate passes the kit's) and
// dropped.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202611270002_casbin_rules",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Table(RuleTable).Migrator().CreateTable(&rule{}); err != nil {
				return err
			}
			return tx.Exec("CREATE UNIQUE INDEX pk_casbin_rules_rule ON " + RuleTable + " (ptype, v0, v1, v2, v3, v4, v5)").Error
		},
		Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(RuleTable) },
	}, {
		// The permissions of the SIS integration and code table routes, for databases
		// whose policy was seeded before they existed. On a new database
		// the table is empty here and Load seeds the whole default policy.
		ID: "202611270103_casbin_sis_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return strings.HasPrefix(r[2], "/sis/") || strings.HasSuffix(r[2], "/restore-sis-fields") || strings.HasPrefix(r[2], "/code-tables")
			})
		},
	}, {
		// The permissions of the circulation routes (libraries, items,
		// terms of use, a user's terms for an item), for databases whose
		// policy was seeded before they existed.
		ID: "202611270104_casbin_circulation_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return r[2] == "/libraries" || strings.HasPrefix(r[2], "/libraries/") || r[2] == "/items" || strings.HasPrefix(r[2], "/items/") ||
					r[2] == "/terms-of-use" || strings.HasSuffix(r[2], "/terms")
			})
		},
	}, {
		// The permissions of the loan routes (check-out, renewals, returns,
		// the loans of a user and of an item), for databases whose policy
		// was seeded before they existed.
		ID: "202611270105_casbin_loan_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return r[2] == "/loans" || strings.HasPrefix(r[2], "/loans/") || r[2] == "/returns" ||
					strings.HasSuffix(r[2], "/loans") || strings.HasSuffix(r[2], "/loans/renew")
			})
		},
	}, {
		// One loan, declaring items lost, a user's blocks and fees, for
		// databases whose policy was seeded before they existed.
		ID: "202611270106_casbin_fee_block_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return r[2] == "/loans/:loan" || strings.HasSuffix(r[2], "/lost") || strings.HasSuffix(r[2], "/blocks") ||
					strings.Contains(r[2], "/fees")
			})
		},
	}, {
		// Requests and the patron's own account (/me), for databases
		// whose policy was seeded before they existed.
		ID: "202611270107_casbin_request_me_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return strings.Contains(r[2], "/requests") || r[2] == "/me" || strings.HasPrefix(r[2], "/me/")
			})
		},
	}, {
		// The patron's notices and settings, for databases whose policy
		// was seeded before they existed.
		ID: "202611270108_casbin_me_notice_settings_policies",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool {
				return strings.HasPrefix(r[2], "/me/notices") || r[2] == "/me/settings"
			})
		},
	}, {
		// The permission on staff records (creating one, making a record
		// STAFF or not, setting a staff record's PIN or changing its
		// primary_id), for databases whose policy was seeded before it
		// existed: until then any role that could create or replace users
		// could.
		ID: "202611280101_casbin_staff_record_policy",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return addLegacyDefaults(tx, func(r []string) bool { return r[2] == "/users/:id/staff" })
		},
	}, {
		// Policies name actions of the library instead of URLs: every URL
		// line becomes the action lines of the routes it allowed.
		ID: "202612020101_casbin_actions",
		Migrate: func(tx *gorm.DB) error {
			var n int64
			if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
				return err
			}
			return urlRulesToActions(tx)
		},
	}, {
		// A user's personal data (users.personal_data, for user
		// administrators and auditors) and the patron's own
		// (account.personal_data), for databases whose policy was seeded
		// before they existed.
		ID:      "202612040101_casbin_personal_data_policies",
		Migrate: addToSeeded(personalDataActionsAdded),
	}, {
		// The audit trail's search, export and verification (audit.read,
		// audit.verify, for auditors) and the patron's own access log
		// (account.access_log), for databases whose policy was seeded
		// before they existed.
		ID:      "202612050102_casbin_audit_policies",
		Migrate: addToSeeded(auditActionsAdded),
	}, {
		// The anonymization of closed records (privacy.anonymize, for
		// user administrators) and the patron's "delete my history now"
		// (account.history.delete), for databases whose policy was seeded
		// before they existed.
		ID:      "202612050202_casbin_retention_policies",
		Migrate: addToSeeded(retentionActionsAdded),
	}, {
		// Legal holds on users (users.legal_hold for user
		// administrators, users.legal_hold.read for them and auditors),
		// for databases whose policy was seeded before they existed.
		ID:      "202612050302_casbin_legal_hold_policies",
		Migrate: addToSeeded(legalHoldActionsAdded),
	}, {
		// Erasure on request (users.erase, for user administrators), for
		// databases whose policy was seeded before it existed.
		ID:      "202612050402_casbin_erasure_policies",
		Migrate: addToSeeded([]grant{{"user-administrator", "*", "users.erase", WhoseAny}}),
	}, {
		// The purge (privacy.purge, for user administrators), for
		// databases whose policy was seeded before it existed.
		ID:      "202612050502_casbin_purge_policies",
		Migrate: addToSeeded([]grant{{"user-administrator", "*", "privacy.purge", WhoseAny}}),
	}, {
		// The API keys of other applications (api_keys.manage, for user
		// administrators), for databases whose policy was seeded before
		// it existed.
		ID:      "202612060102_casbin_api_key_policies",
		Migrate: addToSeeded([]grant{{"user-administrator", "*", "api_keys.manage", WhoseAny}}),
	}, {
		// The sets of users and the jobs over them (sets.read,
		// sets.manage, sets.jobs, for user
		// administrators), for databases whose policy was seeded before
		// they existed.
		ID: "202612060502_casbin_set_policies",
		Migrate: addToSeeded([]grant{
			{"user-administrator", "*", "sets.read", WhoseAny},
			{"user-administrator", "*", "sets.manage", WhoseAny},
			{"user-administrator", "*", "sets.jobs", WhoseAny},
		}),
	}, {
		// A loan's due date changed by hand (loans.due_date, for
		// fulfillment administrators), for databases whose policy was
		// seeded before it existed.
		ID:      "202612070301_casbin_due_date_policies",
		Migrate: addToSeeded([]grant{{"fulfillment-administrator", "*", "loans.due_date", WhoseAny}}),
	}}
}

// retentionActionsAdded are the default lines of the anonymization and of
// the patron's "delete my history now", added to a policy seeded before
// them.
var retentionActionsAdded = []grant{
	{"patron", "*", "account.history.delete", WhoseOwn},
	{"user-administrator", "*", "privacy.anonymize", WhoseAny},
}

// legalHoldActionsAdded are the default lines of the actions on legal
// holds, added to a policy seeded before them.
var legalHoldActionsAdded = []grant{
	{"user-administrator", "*", "users.legal_hold", WhoseAny},
	{"user-administrator", "*", "users.legal_hold.read", WhoseAny},
	{"auditor", "*", "users.legal_hold.read", WhoseAny},
}

// auditActionsAdded are the default lines of the actions on the audit
// trail and the access log, added to a policy seeded before them.
var auditActionsAdded = []grant{
	{"patron", "*", "account.access_log", WhoseOwn},
	{"auditor", "*", "audit.read", WhoseAny},
	{"auditor", "*", "audit.verify", WhoseAny},
}

// personalDataActionsAdded are the default lines of the actions on
// personal data, added to a policy seeded before them.
var personalDataActionsAdded = []grant{
	{"patron", "*", "account.personal_data", WhoseOwn},
	{"user-administrator", "*", "users.personal_data", WhoseAny},
	{"auditor", "*", "users.personal_data", WhoseAny},
}

// addToSeeded is the migration that adds the default lines grants to a
// policy seeded before them; an empty policy (seeded later, with them) is
// left alone.
func addToSeeded(grants []grant) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		var n int64
		if err := tx.Table(RuleTable).Count(&n).Error; err != nil || n == 0 {
			return err
		}
		for _, g := range grants {
			if err := addRule(tx, rule{Ptype: "p", V0: g[0], V1: g[1], V2: g[2], V3: g[3]}); err != nil {
				return err
			}
		}
		return nil
	}
}
