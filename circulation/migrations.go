package circulation

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations returns the versioned schema changes of the circulation
// tables, in order. The kit runs them (with those of the other modules)
// under a lock.
//
// Each migration creates its tables from snapshot structs of its own, not
// from the models, so that a database created long ago and one created
// today end up the same; a later change is a migration of its own.
func Migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{{
		ID: "202611270201_circulation_libraries_items",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&libraryV1{}, &closedDateV1{}, &itemV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			if tx.Dialector.Name() == "mysql" {
				// The keys are folded in Go: compared byte for byte, not by
				// MySQL's default collation, which also takes é for e.
				if err := execAll(tx,
					"ALTER TABLE pk_circ_libraries MODIFY code_key VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
					"ALTER TABLE pk_circ_items MODIFY barcode_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
				); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE UNIQUE INDEX pk_circ_libraries_code ON pk_circ_libraries (institution, code_key)",
				"CREATE INDEX pk_circ_closed_dates_inst ON pk_circ_closed_dates (institution, library_id, date)",
				"CREATE UNIQUE INDEX pk_circ_items_barcode ON pk_circ_items (institution, barcode_key)",
				"CREATE INDEX pk_circ_items_library ON pk_circ_items (institution, library)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&itemV1{}, &closedDateV1{}, &libraryV1{})
		},
	}, {
		ID: "202611270202_circulation_rules",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&ruleSetV1{}, &ruleV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			return execAll(tx, "CREATE INDEX pk_circ_rules_position ON pk_circ_rules (institution, position)")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&ruleV1{}, &ruleSetV1{})
		},
	}, {
		ID: "202611271201_circulation_loans",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&loanV1{}, &itemLoanV1{}, &userLoansV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE INDEX pk_circ_loans_user ON pk_circ_loans (institution, user_id, status)",
				"CREATE INDEX pk_circ_loans_item ON pk_circ_loans (institution, item_id, loaned_at)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&userLoansV1{}, &itemLoanV1{}, &loanV1{})
		},
	}, {
		ID: "202611271801_circulation_fees",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&feeV1{}, &feeTransactionV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE INDEX pk_circ_fees_user ON pk_circ_fees (institution, user_id, status)",
				"CREATE INDEX pk_circ_fee_transactions_fee ON pk_circ_fee_transactions (institution, fee_id)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&feeTransactionV1{}, &feeV1{})
		},
	}, {
		ID: "202611271802_circulation_loan_charges",
		Migrate: func(tx *gorm.DB) error {
			for _, f := range loanChargeFields {
				if err := tx.Migrator().AddColumn(&loanChargesV2{}, f); err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			for _, f := range loanChargeFields {
				if err := tx.Migrator().DropColumn(&loanChargesV2{}, f); err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		ID: "202611271901_circulation_block_limits_lost_after",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().CreateTable(&blockLimitV1{}); err != nil {
				return err
			}
			for _, f := range []string{"ChargeDaysOverdueUntilLost", "LostAfter"} {
				if err := tx.Migrator().AddColumn(&loanLostV3{}, f); err != nil {
					return err
				}
			}
			return execAll(tx,
				"CREATE INDEX pk_circ_block_limits_position ON pk_circ_block_limits (institution, position)",
				"CREATE INDEX pk_circ_loans_lost_after ON pk_circ_loans (status, lost_after)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			for _, f := range []string{"LostAfter", "ChargeDaysOverdueUntilLost"} {
				if err := tx.Migrator().DropColumn(&loanLostV3{}, f); err != nil {
					return err
				}
			}
			return tx.Migrator().DropTable(&blockLimitV1{})
		},
	}, {
		ID: "202611272001_circulation_requests",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Migrator().AddColumn(&itemTitleV2{}, "TitleID"); err != nil {
				return err
			}
			for _, f := range ruleRequestFields {
				if err := tx.Migrator().AddColumn(&ruleRequestsV2{}, f); err != nil {
					return err
				}
			}
			if err := tx.Migrator().CreateTable(&requestV1{}); err != nil {
				return err
			}
			return execAll(tx,
				"CREATE INDEX pk_circ_items_title ON pk_circ_items (institution, title_id)",
				"CREATE INDEX pk_circ_requests_user ON pk_circ_requests (institution, user_id, status)",
				"CREATE INDEX pk_circ_requests_item ON pk_circ_requests (institution, item_id, status)",
				"CREATE INDEX pk_circ_requests_title ON pk_circ_requests (institution, title_id, status)",
				"CREATE INDEX pk_circ_requests_status ON pk_circ_requests (status)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			if err := tx.Migrator().DropTable(&requestV1{}); err != nil {
				return err
			}
			for _, f := range ruleRequestFields {
				if err := tx.Migrator().DropColumn(&ruleRequestsV2{}, f); err != nil {
					return err
				}
			}
			return tx.Migrator().DropColumn(&itemTitleV2{}, "TitleID")
		},
	}, {
		ID: "202611272101_circulation_notices",
		Migrate: func(tx *gorm.DB) error {
			for _, t := range []any{&noticeV1{}, &noticePrefsV1{}} {
				if err := tx.Migrator().CreateTable(t); err != nil {
					return err
				}
			}
			if tx.Dialector.Name() == "mysql" {
				if err := execAll(tx, "ALTER TABLE pk_circ_notices MODIFY `key` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"); err != nil {
					return err
				}
			}
			q := `"key"`
			if tx.Dialector.Name() == "mysql" {
				q = "`key`"
			}
			return execAll(tx,
				"CREATE UNIQUE INDEX pk_circ_notices_key ON pk_circ_notices (institution, "+q+")",
				"CREATE INDEX pk_circ_notices_status ON pk_circ_notices (status, created_at)",
				"CREATE INDEX pk_circ_notices_loan ON pk_circ_notices (loan_id, kind)",
				"CREATE INDEX pk_circ_notices_user ON pk_circ_notices (institution, user_id, created_at)",
			)
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(&noticePrefsV1{}, &noticeV1{})
		},
	}, {
		// The details of a payment (method, comment, the payment system's
		// id), which Alma's users API sends.
		ID: "202612060103_circulation_payment_details",
		Migrate: func(tx *gorm.DB) error {
			for _, f := range []string{"Method", "Comment", "ExternalID"} {
				if err := tx.Migrator().AddColumn(&transactionV2{}, f); err != nil {
					return err
				}
			}
			return nil
		},
		Rollback: func(tx *gorm.DB) error {
			for _, f := range []string{"ExternalID", "Comment", "Method"} {
				if err := tx.Migrator().DropColumn(&transactionV2{}, f); err != nil {
					return err
				}
			}
			return nil
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

// The tables as migration 202611270201 creates them, whatever the models
// become later.

type libraryV1 struct {
	ID              string `gorm:"primaryKey;size:36"`
	Institution     string `gorm:"size:64;not null"`
	Code            string `gorm:"size:64;not null"`
	CodeKey         string `gorm:"size:64;not null"`
	Name            string `gorm:"size:255;not null"`
	TimeZone        string `gorm:"size:64;not null"`
	PickupLocations string `gorm:"size:1000"`
	Version         int    `gorm:"not null"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (libraryV1) TableName() string { return "pk_circ_libraries" }

type closedDateV1 struct {
	LibraryID   string `gorm:"primaryKey;size:36"`
	Date        string `gorm:"primaryKey;size:10"`
	Institution string `gorm:"size:64;not null"`
	Note        string `gorm:"size:255"`
}

func (closedDateV1) TableName() string { return "pk_circ_closed_dates" }

type itemV1 struct {
	ID           string `gorm:"primaryKey;size:36"`
	Institution  string `gorm:"size:64;not null"`
	Barcode      string `gorm:"size:255;not null"`
	BarcodeKey   string `gorm:"size:255;not null"`
	Title        string `gorm:"size:1000;not null"`
	Author       string `gorm:"size:255"`
	Library      string `gorm:"size:64;not null"`
	Location     string `gorm:"size:64"`
	ItemPolicy   string `gorm:"size:64"`
	MaterialType string `gorm:"size:64"`
	Status       string `gorm:"size:16;not null"`
	Version      int    `gorm:"not null"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (itemV1) TableName() string { return "pk_circ_items" }

// The tables as migration 202611270202 creates them.

type ruleSetV1 struct {
	Institution string `gorm:"primaryKey;size:64"`
	Version     int    `gorm:"not null"`
	UpdatedAt   time.Time
}

func (ruleSetV1) TableName() string { return "pk_circ_rule_sets" }

type ruleV1 struct {
	ID                   string `gorm:"primaryKey;size:36"`
	Institution          string `gorm:"size:64;not null"`
	Position             int    `gorm:"not null"`
	Name                 string `gorm:"size:255"`
	UserGroup            string `gorm:"size:64"`
	ItemPolicy           string `gorm:"size:64"`
	Library              string `gorm:"size:64"`
	MaterialType         string `gorm:"size:64"`
	LoanPeriod           int
	LoanPeriodUnit       string `gorm:"size:16"`
	FixedDueDate         string `gorm:"size:10"`
	Renewals             int
	RenewalPeriod        int
	RenewalPeriodUnit    string `gorm:"size:16"`
	OverdueFine          int64
	OverdueFineUnit      string `gorm:"size:16"`
	GracePeriod          int
	GracePeriodUnit      string `gorm:"size:16"`
	MaxFine              int64
	LostItemFee          int64
	DaysOverdueUntilLost int
	Currency             string `gorm:"size:3"`
	MaxLoans             int
	RequestsAllowed      bool
}

func (ruleV1) TableName() string { return "pk_circ_rules" }

// The tables as migration 202611271201 creates them: loans, the row that
// makes an item's open loan unique, and each patron's count of open loans.

type loanV1 struct {
	ID             string `gorm:"primaryKey;size:36"`
	Institution    string `gorm:"size:64;not null"`
	UserID         string `gorm:"size:36;not null"`
	PrimaryID      string `gorm:"size:255;not null"`
	ItemID         string `gorm:"size:36;not null"`
	ItemBarcode    string `gorm:"size:255;not null"`
	Library        string `gorm:"size:64;not null"`
	LoanedAt       time.Time
	DueAt          time.Time
	ReturnedAt     *time.Time
	Renewals       int    `gorm:"not null"`
	ProxyPrimaryID string `gorm:"size:255"`
	Status         string `gorm:"size:16;not null"`
	Version        int    `gorm:"not null"`
	UpdatedAt      time.Time
}

func (loanV1) TableName() string { return "pk_circ_loans" }

type itemLoanV1 struct {
	ItemID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	LoanID      string `gorm:"size:36;not null"`
}

func (itemLoanV1) TableName() string { return "pk_circ_item_loans" }

type userLoansV1 struct {
	UserID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	OpenLoans   int    `gorm:"not null"`
}

func (userLoansV1) TableName() string { return "pk_circ_user_loans" }

// The tables as migration 202611271801 creates them: fees and their
// payments and waivers.

type feeV1 struct {
	ID          string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	UserID      string `gorm:"size:36;not null"`
	PrimaryID   string `gorm:"size:255;not null"`
	Type        string `gorm:"size:16;not null"`
	LoanID      string `gorm:"size:36"`
	Barcode     string `gorm:"size:255"`
	Description string `gorm:"size:1000"`
	Amount      int64  `gorm:"not null"`
	Paid        int64  `gorm:"not null"`
	Waived      int64  `gorm:"not null"`
	Currency    string `gorm:"size:3;not null"`
	Status      string `gorm:"size:16;not null"`
	CreatedBy   string `gorm:"size:255"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int `gorm:"not null"`
}

func (feeV1) TableName() string { return "pk_circ_fees" }

type feeTransactionV1 struct {
	ID          string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	FeeID       string `gorm:"size:36;not null"`
	Kind        string `gorm:"size:16;not null"`
	Amount      int64  `gorm:"not null"`
	Reason      string `gorm:"size:1000"`
	Actor       string `gorm:"size:255"`
	At          time.Time
}

func (feeTransactionV1) TableName() string { return "pk_circ_fee_transactions" }

// The columns migration 202611271802 adds to pk_circ_loans: the fine and
// fee terms copied to each loan at check-out.

type loanChargesV2 struct {
	ChargesSet            bool   `gorm:"not null;default:false"`
	ChargeOverdueFine     int64  `gorm:"not null;default:0"`
	ChargeOverdueFineUnit string `gorm:"size:16;not null;default:''"`
	ChargeGracePeriod     int    `gorm:"not null;default:0"`
	ChargeGracePeriodUnit string `gorm:"size:16;not null;default:''"`
	ChargeMaxFine         int64  `gorm:"not null;default:0"`
	ChargeLostItemFee     int64  `gorm:"not null;default:0"`
	ChargeCurrency        string `gorm:"size:3;not null;default:''"`
}

func (loanChargesV2) TableName() string { return "pk_circ_loans" }

var loanChargeFields = []string{"ChargesSet", "ChargeOverdueFine", "ChargeOverdueFineUnit", "ChargeGracePeriod",
	"ChargeGracePeriodUnit", "ChargeMaxFine", "ChargeLostItemFee", "ChargeCurrency"}

// The table and columns migration 202611271901 adds: the block limits of
// the terms of use, and on each loan the days overdue until it is lost
// and the time that makes.

type blockLimitV1 struct {
	ID              string `gorm:"primaryKey;size:36"`
	Institution     string `gorm:"size:64;not null"`
	Position        int    `gorm:"not null"`
	UserGroup       string `gorm:"size:64"`
	MaxBalance      *int64
	Currency        string `gorm:"size:3"`
	MaxOverdueLoans *int
	Stops           string `gorm:"size:64"`
}

func (blockLimitV1) TableName() string { return "pk_circ_block_limits" }

type loanLostV3 struct {
	ChargeDaysOverdueUntilLost int `gorm:"not null;default:0"`
	LostAfter                  *time.Time
}

func (loanLostV3) TableName() string { return "pk_circ_loans" }

// The columns and table migration 202611272001 adds: the title of items,
// the request terms of rules, and requests.

type itemTitleV2 struct {
	TitleID string `gorm:"size:64"`
}

func (itemTitleV2) TableName() string { return "pk_circ_items" }

type ruleRequestsV2 struct {
	PickupAnyLibrary bool  `gorm:"not null;default:false"`
	PersonalDelivery bool  `gorm:"not null;default:false"`
	DeliveryFee      int64 `gorm:"not null;default:0"`
	HoldShelfDays    int   `gorm:"not null;default:0"`
}

func (ruleRequestsV2) TableName() string { return "pk_circ_rules" }

var ruleRequestFields = []string{"PickupAnyLibrary", "PersonalDelivery", "DeliveryFee", "HoldShelfDays"}

type requestV1 struct {
	ID              string `gorm:"primaryKey;size:36"`
	Institution     string `gorm:"size:64;not null"`
	UserID          string `gorm:"size:36;not null"`
	PrimaryID       string `gorm:"size:255;not null"`
	Level           string `gorm:"size:8;not null"`
	ItemID          string `gorm:"size:36"`
	Barcode         string `gorm:"size:255"`
	TitleID         string `gorm:"size:64"`
	Title           string `gorm:"size:1000"`
	PickupLibrary   string `gorm:"size:64"`
	DeliveryAddress string `gorm:"size:1000"`
	NotNeededAfter  string `gorm:"size:10"`
	HoldShelfDays   int    `gorm:"not null"`
	Status          string `gorm:"size:16;not null"`
	HoldUntil       *time.Time
	FeeID           string `gorm:"size:36"`
	PlacedAt        time.Time
	ClosedAt        *time.Time
	CloseReason     string `gorm:"size:1000"`
	ClosedBy        string `gorm:"size:255"`
	Version         int    `gorm:"not null"`
	UpdatedAt       time.Time
}

func (requestV1) TableName() string { return "pk_circ_requests" }

// The tables migration 202611272101 creates: the notice outbox and the
// patrons' notice settings.

type noticeV1 struct {
	ID           string `gorm:"primaryKey;size:36"`
	Institution  string `gorm:"size:64;not null"`
	UserID       string `gorm:"size:36;not null"`
	PrimaryID    string `gorm:"size:255;not null"`
	Kind         string `gorm:"size:32;not null"`
	Key          string `gorm:"size:255;not null"`
	LoanID       string `gorm:"size:36"`
	DueAt        *time.Time
	Channel      string `gorm:"size:8"`
	Recipient    string `gorm:"size:255"`
	Language     string `gorm:"size:16"`
	Subject      string `gorm:"size:255"`
	Body         string `gorm:"size:10000"`
	Status       string `gorm:"size:16;not null"`
	Attempts     int    `gorm:"not null"`
	Error        string `gorm:"size:1000"`
	Claimed      *time.Time
	SentAt       *time.Time
	AttachmentID string `gorm:"size:36"`
	CreatedAt    time.Time
}

func (noticeV1) TableName() string { return "pk_circ_notices" }

type noticePrefsV1 struct {
	UserID      string `gorm:"primaryKey;size:36"`
	Institution string `gorm:"size:64;not null"`
	OptOuts     string `gorm:"size:255"`
}

func (noticePrefsV1) TableName() string { return "pk_circ_notice_prefs" }

// transactionV2 is a fee transaction with the details of a payment.
type transactionV2 struct {
	Method     string `gorm:"size:64"`
	Comment    string `gorm:"size:1000"`
	ExternalID string `gorm:"size:255"`
}

func (transactionV2) TableName() string { return "pk_circ_fee_transactions" }
