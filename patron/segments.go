package patron

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// Segment is what every segment of a user record has: an id, the user it
// belongs to, and whether it is Internal (added in the library) or External
// (from the SIS).
type Segment struct {
	ID          string `json:"id" gorm:"primaryKey;size:36"`
	UserID      string `json:"-" gorm:"size:36;not null;index"`
	SegmentType string `json:"segment_type" gorm:"size:16;not null" validate:"omitempty,oneof=Internal External"`
}

func (s Segment) segment() Segment { return s }

// IsExternal reports whether the segment came from the SIS.
func (s Segment) IsExternal() bool { return s.SegmentType == SegmentExternal }

// Codes is a list of codes (address types, email types...) stored as one
// comma-separated column.
type Codes []string

// Value implements driver.Valuer.
func (c Codes) Value() (driver.Value, error) { return strings.Join(c, ","), nil }

// Scan implements sql.Scanner.
func (c *Codes) Scan(v any) error {
	var s string
	switch t := v.(type) {
	case nil:
	case string:
		s = t
	case []byte:
		s = string(t)
	default:
		return fmt.Errorf("patron: cannot scan %T into Codes", v)
	}
	if s == "" {
		*c = nil
		return nil
	}
	*c = strings.Split(s, ",")
	return nil
}

// Identifier is another way to find a user than the primary_id: a barcode,
// a university id card. A value is unique per institution and id type.
type Identifier struct {
	Segment
	Institution string `json:"-" gorm:"size:64;not null"`
	IDType      string `json:"id_type" gorm:"size:64;not null" validate:"required,max=64"`
	Value       string `json:"value" gorm:"size:255;not null" validate:"required,max=255"`
	ValueKey    string `json:"-" gorm:"size:255;not null"`
	Note        string `json:"note,omitempty" gorm:"size:255" validate:"max=255"`
	Status      string `json:"status,omitempty" gorm:"size:16" validate:"omitempty,oneof=ACTIVE INACTIVE"`
}

// TableName implements gorm's Tabler.
func (Identifier) TableName() string { return "pk_user_identifiers" }

// Address is a postal address of the user.
type Address struct {
	Segment
	Line1         string `json:"line1" gorm:"size:255" validate:"required,max=255"`
	Line2         string `json:"line2,omitempty" gorm:"size:255" validate:"max=255"`
	Line3         string `json:"line3,omitempty" gorm:"size:255" validate:"max=255"`
	Line4         string `json:"line4,omitempty" gorm:"size:255" validate:"max=255"`
	Line5         string `json:"line5,omitempty" gorm:"size:255" validate:"max=255"`
	City          string `json:"city,omitempty" gorm:"size:255" validate:"max=255"`
	StateProvince string `json:"state_province,omitempty" gorm:"size:255" validate:"max=255"`
	PostalCode    string `json:"postal_code,omitempty" gorm:"size:64" validate:"max=64"`
	Country       string `json:"country,omitempty" gorm:"size:64" validate:"max=64"`
	AddressNote   string `json:"address_note,omitempty" gorm:"size:255" validate:"max=255"`
	StartDate     string `json:"start_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`
	EndDate       string `json:"end_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`
	AddressTypes  Codes  `json:"address_types,omitempty" gorm:"size:255" validate:"max=8,dive,max=32"`
	Preferred     bool   `json:"preferred"`
}

// TableName implements gorm's Tabler.
func (Address) TableName() string { return "pk_user_addresses" }

// Email is an email address of the user.
type Email struct {
	Segment
	EmailAddress string `json:"email_address" gorm:"size:255;not null" validate:"required,email,max=255"`
	Description  string `json:"description,omitempty" gorm:"size:255" validate:"max=255"`
	EmailTypes   Codes  `json:"email_types,omitempty" gorm:"size:255" validate:"max=8,dive,max=32"`
	Preferred    bool   `json:"preferred"`
}

// TableName implements gorm's Tabler.
func (Email) TableName() string { return "pk_user_emails" }

// Phone is a phone number of the user; PreferredSMS marks the one that
// takes text messages.
type Phone struct {
	Segment
	PhoneNumber  string `json:"phone_number" gorm:"size:64;not null" validate:"required,max=64"`
	PhoneTypes   Codes  `json:"phone_types,omitempty" gorm:"size:255" validate:"max=8,dive,max=32"`
	Preferred    bool   `json:"preferred"`
	PreferredSMS bool   `json:"preferred_sms"`
}

// TableName implements gorm's Tabler.
func (Phone) TableName() string { return "pk_user_phones" }

// Note origins.
const (
	OriginLibrary  = "library"
	OriginExternal = "external"
)

// Note is a note on the user record. A user_viewable note is shown to the
// patron; any other is for staff only.
type Note struct {
	Segment
	NoteType     string    `json:"note_type,omitempty" gorm:"size:64" validate:"max=64"`
	NoteText     string    `json:"note_text" gorm:"size:2000;not null" validate:"required,max=2000" text:"multiline"`
	UserViewable bool      `json:"user_viewable"`
	PopupNote    bool      `json:"popup_note"`
	Origin       string    `json:"origin,omitempty" gorm:"size:16" validate:"omitempty,oneof=library external"`
	CreatedBy    string    `json:"created_by,omitempty" gorm:"size:255" validate:"max=255"`
	CreatedDate  time.Time `json:"created_date"`
}

// TableName implements gorm's Tabler.
func (Note) TableName() string { return "pk_user_notes" }

// Block is a manual block on the user: while active (and not expired) it
// stops loans, renewals and requests.
type Block struct {
	Segment
	BlockType        string    `json:"block_type" gorm:"size:64;not null" validate:"required,max=64"`
	BlockDescription string    `json:"block_description" gorm:"size:255" validate:"required,max=255"`
	BlockStatus      string    `json:"block_status" gorm:"size:16;not null" validate:"omitempty,oneof=ACTIVE INACTIVE"`
	BlockNote        string    `json:"block_note,omitempty" gorm:"size:2000" validate:"max=2000" text:"multiline"`
	ExpiryDate       string    `json:"expiry_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`
	CreatedBy        string    `json:"created_by,omitempty" gorm:"size:255" validate:"max=255"`
	CreatedDate      time.Time `json:"created_date"`
}

// TableName implements gorm's Tabler.
func (Block) TableName() string { return "pk_user_blocks" }

// Statistic is a statistical category of the user (e.g. Graduate).
type Statistic struct {
	Segment
	StatisticCategory string `json:"statistic_category" gorm:"size:64;not null" validate:"required,max=64"`
	CategoryType      string `json:"category_type,omitempty" gorm:"size:64" validate:"max=64"`
	StatisticNote     string `json:"statistic_note,omitempty" gorm:"size:255" validate:"max=255"`
}

// TableName implements gorm's Tabler.
func (Statistic) TableName() string { return "pk_user_statistics" }

// ProxyFor says this user may borrow and return on behalf of another user
// (the sponsor), named by primary_id.
type ProxyFor struct {
	Segment
	PrimaryID  string `json:"primary_id" gorm:"size:255;not null" validate:"required,max=255"`
	ExpiryDate string `json:"expiry_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`
}

// TableName implements gorm's Tabler.
func (ProxyFor) TableName() string { return "pk_user_proxies" }
