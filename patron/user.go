package patron

import "time"

// Account types: an internal user is kept by the library; an external one is
// owned by a Student Information System and synchronized from it.
const (
	AccountInternal = "INTERNAL"
	AccountExternal = "EXTERNAL"
)

// Record types, as Alma names them.
const (
	RecordPublic  = "PUBLIC"
	RecordStaff   = "STAFF"
	RecordContact = "CONTACT"
)

// User statuses.
const (
	StatusActive   = "ACTIVE"
	StatusInactive = "INACTIVE"
)

// Segment types: where a segment came from. An Internal segment was added in
// the library; an External one came from the SIS and is replaced by every
// synchronize.
const (
	SegmentInternal = "Internal"
	SegmentExternal = "External"
)

// User is a patron record: the core fields of Alma's user and its segments.
// Code fields (user_group, campus_code, job_category...) hold the code only.
// Dates are civil dates written YYYY-MM-DD.
type User struct {
	ID          string `json:"-" gorm:"primaryKey;size:36"`
	Institution string `json:"-" gorm:"size:64;not null"`

	PrimaryID string `json:"primary_id" gorm:"size:255;not null" validate:"required,max=255"`
	// PrimaryIDKey is the primary_id folded to lower case: primary ids are
	// unique per institution whatever their case, on every database.
	PrimaryIDKey string `json:"-" gorm:"size:255;not null"`

	AccountType string `json:"account_type" gorm:"size:16;not null" validate:"omitempty,oneof=INTERNAL EXTERNAL"`
	// ExternalID is the code of the integration profile that owns an
	// external user (Alma's external_id).
	ExternalID string `json:"external_id,omitempty" gorm:"size:64" validate:"required_if=AccountType EXTERNAL,max=64"`
	RecordType string `json:"record_type" gorm:"size:16;not null" validate:"omitempty,oneof=PUBLIC STAFF CONTACT"`

	FirstName  string `json:"first_name" gorm:"size:255" validate:"required,max=255"`
	MiddleName string `json:"middle_name,omitempty" gorm:"size:255" validate:"max=255"`
	LastName   string `json:"last_name" gorm:"size:255" validate:"required,max=255"`
	UserTitle  string `json:"user_title,omitempty" gorm:"size:64" validate:"max=64"`
	Gender     string `json:"gender,omitempty" gorm:"size:32" validate:"max=32"`
	BirthDate  string `json:"birth_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`

	UserGroup         string `json:"user_group,omitempty" gorm:"size:64" validate:"max=64"`
	CampusCode        string `json:"campus_code,omitempty" gorm:"size:64" validate:"max=64"`
	JobCategory       string `json:"job_category,omitempty" gorm:"size:255" validate:"max=255"`
	JobDescription    string `json:"job_description,omitempty" gorm:"size:255" validate:"max=255"`
	PreferredLanguage string `json:"preferred_language,omitempty" gorm:"size:16" validate:"max=16"`
	RSLibrary         string `json:"rs_library,omitempty" gorm:"column:rs_library;size:64" validate:"max=64"`

	Status     string `json:"status" gorm:"size:16;not null" validate:"omitempty,oneof=ACTIVE INACTIVE"`
	ExpiryDate string `json:"expiry_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`
	PurgeDate  string `json:"purge_date,omitempty" gorm:"size:10" validate:"omitempty,datetime=2006-01-02"`

	// PINNumber is write-only: a new PIN on create or replace. It is stored
	// only as a slow hash and never read back.
	PINNumber string `json:"pin_number,omitempty" gorm:"-" validate:"omitempty,min=4,max=64"`
	PINHash   string `json:"-" gorm:"column:pin_hash;size:255"`

	// SISHash fingerprints the record the SIS last sent for this user, so
	// that a synchronize skips users whose record has not changed.
	SISHash string `json:"-" gorm:"column:sis_hash;size:64"`

	// Version counts the changes of the record; updates must name the
	// version they were based on (optimistic concurrency).
	Version   int       `json:"version" gorm:"not null"`
	CreatedAt time.Time `json:"created_date"`
	UpdatedAt time.Time `json:"updated_date"`

	Identifiers []Identifier `json:"user_identifiers,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Addresses   []Address    `json:"addresses,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Emails      []Email      `json:"emails,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Phones      []Phone      `json:"phones,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Notes       []Note       `json:"user_notes,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Blocks      []Block      `json:"user_blocks,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	Statistics  []Statistic  `json:"user_statistics,omitempty" gorm:"foreignKey:UserID" validate:"dive"`
	ProxyFor    []ProxyFor   `json:"proxy_for_users,omitempty" gorm:"foreignKey:UserID" validate:"dive"`

	// Warnings are computed on every read: e.g. contacts of a kind with
	// none marked preferred.
	Warnings []string `json:"warnings,omitempty" gorm:"-"`
}

// TableName places users in the pk_ namespace of the host's database.
func (User) TableName() string { return "pk_users" }

// IsExternal reports whether a Student Information System owns the user.
func (u *User) IsExternal() bool { return u.AccountType == AccountExternal }

// RetainedFields are the core fields of an external user that staff may
// change by hand and that a synchronize then keeps (Alma's list).
var RetainedFields = []string{"user_group", "job_category", "pin_number", "preferred_language", "campus_code", "rs_library"}
