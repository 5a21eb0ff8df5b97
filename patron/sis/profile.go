package sis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/robfig/cron/v3"
	"gorm.io/gorm"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// Expiry and purge date rules of a profile.
const (
	// RuleFromFile takes the date the file gives (expiry only).
	RuleFromFile = "file"
	// RuleFixed sets a fixed date.
	RuleFixed = "fixed"
	// RuleRelative sets a date some days after another: the expiry date
	// after the file's date, the purge date after the expiry date.
	RuleRelative = "relative"
	// RuleNone leaves the purge date as the file gives it.
	RuleNone = "none"
	// RuleDefault sets the purge date some days after the expiry date
	// when the file gives none, as Alma's profile does; a date the file
	// gives is kept (purge only).
	RuleDefault = "default"
)

// Profile is an integration profile: how one SIS's files reach an
// institution and how they are applied.
type Profile struct {
	Institution string `json:"-" gorm:"primaryKey;size:64"`
	// Code names the profile; external users name it as their external_id.
	Code        string `json:"code" gorm:"primaryKey;size:64" validate:"required,max=64,profilecode"`
	Description string `json:"description,omitempty" gorm:"size:255" validate:"max=255"`
	// Source names where files come from: a Source given to the kit, or
	// "upload" for files sent through the API only.
	Source string `json:"source" gorm:"size:64;not null" validate:"required,max=64"`
	// Format names one of the service's file formats (built in: xml, zip,
	// json, csv); empty picks by file extension.
	Format string `json:"format,omitempty" gorm:"size:16" validate:"max=16"`
	// Mode is import (new users only) or synchronize (update and add).
	Mode string `json:"mode" gorm:"size:16;not null" validate:"required,oneof=import synchronize"`
	// MatchBy is primary_id or an identifier type.
	MatchBy string `json:"match_by" gorm:"size:64;not null" validate:"required,max=64"`
	// Unmatched is add or reject: what a synchronize does with a user that
	// matches nobody.
	Unmatched string `json:"unmatched" gorm:"size:16;not null" validate:"required,oneof=add reject"`
	// RecordType is given to users whose record has none: PUBLIC by default.
	// STAFF needs AllowStaff.
	RecordType string `json:"record_type,omitempty" gorm:"size:16" validate:"omitempty,oneof=PUBLIC STAFF CONTACT"`
	// AllowStaff lets the profile's files create and update STAFF records,
	// which sign in as staff and hold roles. Default false: an incoming
	// STAFF user is rejected with the reason, and so is one that matches a
	// STAFF record (the profile neither makes staff nor changes them; nor
	// does DeactivateMissing deactivate them); the rest of the run goes on.
	AllowStaff bool `json:"allow_staff"`

	// ExpiryRule is file, fixed (ExpiryDate) or relative (ExpiryDays after
	// the file's date).
	ExpiryRule string `json:"expiry_rule" gorm:"size:16;not null" validate:"required,oneof=file fixed relative"`
	ExpiryDate string `json:"expiry_date,omitempty" gorm:"size:10" validate:"required_if=ExpiryRule fixed,omitempty,datetime=2006-01-02"`
	ExpiryDays int    `json:"expiry_days,omitempty" validate:"min=0,max=36500"`
	// PurgeRule is none (as the file says), fixed (PurgeDate), relative
	// (PurgeDays after the expiry date) or default (PurgeDays after the
	// expiry date when the file gives no purge date).
	PurgeRule string `json:"purge_rule" gorm:"size:16;not null" validate:"required,oneof=none fixed relative default"`
	PurgeDate string `json:"purge_date,omitempty" gorm:"size:10" validate:"required_if=PurgeRule fixed,omitempty,datetime=2006-01-02"`
	PurgeDays int    `json:"purge_days,omitempty" validate:"min=0,max=36500"`

	// Schedule is a cron expression (minute hour day month weekday), e.g.
	// "0 6,18 * * *" for twice a day; empty runs on demand only.
	Schedule string `json:"schedule,omitempty" gorm:"size:128" validate:"max=128"`
	// TimeZone is the IANA zone the schedule is read in. Default: UTC.
	TimeZone string `json:"time_zone,omitempty" gorm:"size:64" validate:"max=64"`
	// DeactivateMissing makes the profile's users that a clean run (none
	// rejected or failed) did not see INACTIVE; a dry run counts them.
	DeactivateMissing bool `json:"deactivate_missing"`

	// LastScheduledAt is when the schedule last started a run.
	LastScheduledAt *time.Time `json:"last_scheduled_at,omitempty"`
	Version         int        `json:"version" gorm:"not null"`
	CreatedAt       time.Time  `json:"created_date"`
	UpdatedAt       time.Time  `json:"updated_date"`
}

// TableName implements gorm's Tabler.
func (Profile) TableName() string { return "pk_sis_profiles" }

// Upload is the source of profiles whose files come only through the API.
const Upload = "upload"

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// schedule parses the profile's schedule in its time zone; nil when none.
func (p *Profile) schedule() (cron.Schedule, error) {
	if p.Schedule == "" {
		return nil, nil
	}
	tz := p.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return nil, fmt.Errorf("time_zone %q is not an IANA time zone", tz)
	}
	return cronParser.Parse("CRON_TZ=" + tz + " " + p.Schedule)
}

// dates applies the profile's expiry and purge rules to an incoming user;
// fileDate is the date of the file.
func (p *Profile) dates(u *patron.User, fileDate time.Time) {
	switch p.ExpiryRule {
	case RuleFixed:
		u.ExpiryDate = p.ExpiryDate
	case RuleRelative:
		u.ExpiryDate = fileDate.AddDate(0, 0, p.ExpiryDays).Format(time.DateOnly)
	}
	switch p.PurgeRule {
	case RuleFixed:
		u.PurgeDate = p.PurgeDate
	case RuleRelative, RuleDefault:
		if p.PurgeRule == RuleDefault && u.PurgeDate != "" {
			break
		}
		if exp, err := time.Parse(time.DateOnly, u.ExpiryDate); err == nil {
			u.PurgeDate = exp.AddDate(0, 0, p.PurgeDays).Format(time.DateOnly)
		}
	}
}

func newProfileValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	_ = v.RegisterValidation("profilecode", func(fl validator.FieldLevel) bool {
		return !strings.ContainsFunc(fl.Field().String(), func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		})
	})
	return v
}

// validateProfile checks a profile; every failure names its field.
func (s *Service) validateProfile(p *Profile) error {
	var fields []fault.FieldError
	if err := s.validate.Struct(p); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			return err
		}
		for _, fe := range ves {
			code, msg := profileMessage(fe)
			fields = append(fields, fault.FieldError{Field: fe.Field(), Code: code, Message: msg})
		}
	}
	for _, f := range patron.TextErrors("", p) {
		if !slices.ContainsFunc(fields, func(g fault.FieldError) bool { return g.Field == f.Field }) {
			fields = append(fields, f)
		}
	}
	if _, err := time.LoadLocation(p.TimeZone); p.TimeZone != "" && err != nil {
		fields = append(fields, fault.FieldError{Field: "time_zone", Code: "unknown_value", Message: fmt.Sprintf("%q is not an IANA time zone", p.TimeZone)})
	} else if _, err := p.schedule(); err != nil {
		fields = append(fields, fault.FieldError{Field: "schedule", Code: "bad_format", Message: err.Error()})
	}
	if p.Format != "" && !slices.Contains(s.formats.names(), p.Format) {
		fields = append(fields, fault.FieldError{Field: "format", Code: "unknown_value", Message: "must be one of: " + strings.Join(s.formats.names(), ", ")})
	}
	if p.RecordType == patron.RecordStaff && !p.AllowStaff {
		fields = append(fields, fault.FieldError{Field: "record_type", Code: "unknown_value", Message: "STAFF needs allow_staff: a profile makes staff records only where it allows them"})
	}
	if p.Source != Upload {
		if _, ok := s.sources[p.Source]; !ok {
			fields = append(fields, fault.FieldError{Field: "source", Code: "unknown_value", Message: fmt.Sprintf("no source %q: use %s", p.Source, strings.Join(s.sourceNames(), ", "))})
		}
	}
	if len(fields) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the profile is not valid", Fields: fields}
	}
	return nil
}

// profileMessage gives the stable code and the message of a failed rule,
// with the same codes the user records use.
func profileMessage(fe validator.FieldError) (code, msg string) {
	switch fe.Tag() {
	case "required", "required_if":
		return "required", "is required"
	case "oneof":
		return "unknown_value", "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "profilecode":
		return "bad_format", "may hold only letters, digits, - and _"
	case "datetime":
		return "bad_format", "is not a date written YYYY-MM-DD"
	case "max":
		if fe.Kind() == reflect.String {
			return "too_long", "is longer than " + fe.Param() + " characters"
		}
		return "out_of_range", "is more than " + fe.Param()
	case "min":
		return "out_of_range", "is less than " + fe.Param()
	}
	return fe.Tag(), "fails the " + fe.Tag() + " rule"
}

func normalizeProfile(p *Profile) {
	p.Code = strings.TrimSpace(p.Code)
	p.Mode = strings.ToLower(strings.TrimSpace(p.Mode))
	p.Unmatched = strings.ToLower(strings.TrimSpace(p.Unmatched))
	p.Format = strings.ToLower(strings.TrimSpace(p.Format))
	p.RecordType = strings.ToUpper(strings.TrimSpace(p.RecordType))
	p.Schedule = strings.TrimSpace(p.Schedule)
	if p.MatchBy == "" {
		p.MatchBy = MatchPrimaryID
	}
	if p.Unmatched == "" {
		p.Unmatched = UnmatchedAdd
	}
	if p.ExpiryRule == "" {
		p.ExpiryRule = RuleFromFile
	}
	if p.PurgeRule == "" {
		p.PurgeRule = RuleNone
	}
}

// CreateProfile adds an integration profile to an institution.
func (s *Service) CreateProfile(ctx context.Context, inst string, in *Profile) (*Profile, error) {
	p := *in
	p.Institution = inst
	normalizeProfile(&p)
	if err := s.validateProfile(&p); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	p.Version, p.CreatedAt, p.UpdatedAt, p.LastScheduledAt = 1, now, now, nil
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Profile{}).Where("institution = ? AND code = ?", inst, p.Code).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return &fault.Error{Kind: fault.Conflict, Detail: fmt.Sprintf("profile %q exists already", p.Code)}
		}
		return tx.Create(&p).Error
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return &p, nil
}

// Profile returns an integration profile by code.
func (s *Service) Profile(ctx context.Context, inst, code string) (*Profile, error) {
	var p Profile
	if !patron.Findable(code) {
		return nil, &fault.Error{Kind: fault.NotFound, Detail: fmt.Sprintf("no profile %q", code)}
	}
	err := s.conn(ctx).Where("institution = ? AND code = ?", inst, code).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, &fault.Error{Kind: fault.NotFound, Detail: fmt.Sprintf("no profile %q", code)}
	}
	return &p, err
}

// Profiles lists an institution's integration profiles by code.
func (s *Service) Profiles(ctx context.Context, inst string) ([]Profile, error) {
	out := []Profile{}
	err := s.conn(ctx).Where("institution = ?", inst).Order("code").Find(&out).Error
	return out, err
}

// ReplaceProfile replaces a profile's settings; version is the version the
// caller read (Stale when it changed since). The code cannot change.
func (s *Service) ReplaceProfile(ctx context.Context, inst, code string, version int, in *Profile) (*Profile, error) {
	p := *in
	p.Institution, p.Code = inst, code
	normalizeProfile(&p)
	var out Profile
	err := s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		cur, err := s.Profile(ctx, inst, code)
		if err != nil {
			return err
		}
		if err := s.validateProfile(&p); err != nil {
			return err
		}
		if cur.Version != version {
			return &fault.Error{Kind: fault.Stale, Detail: fmt.Sprintf("the profile is at version %d, not %d: read it again", cur.Version, version)}
		}
		p.Version, p.CreatedAt, p.UpdatedAt, p.LastScheduledAt = cur.Version+1, cur.CreatedAt, s.now().UTC(), cur.LastScheduledAt
		res := tx.Model(&Profile{}).Where("institution = ? AND code = ? AND version = ?", inst, code, version).
			Select("*").Omit("institution", "code", "created_at").Updates(&p)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &fault.Error{Kind: fault.Stale, Detail: "the profile changed while it was being saved: read it again"}
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return &out, nil
}

// DeleteProfile removes a profile. Its users stay (their external_id names
// it until another profile takes them over); a running run refuses.
func (s *Service) DeleteProfile(ctx context.Context, inst, code string) error {
	if _, err := s.Profile(ctx, inst, code); err != nil {
		return err
	}
	var running int64
	if err := s.conn(ctx).Model(&lease{}).Where("institution = ? AND profile = ? AND expires_at >= ?", inst, code, s.now().UTC()).Count(&running).Error; err != nil {
		return err
	}
	if running > 0 {
		return &fault.Error{Kind: fault.Refused, Detail: fmt.Sprintf("profile %q cannot be deleted", code), Reasons: []string{"a run of the profile is in progress"}}
	}
	return s.conn(ctx).Where("institution = ? AND code = ?", inst, code).Delete(&Profile{}).Error
}
