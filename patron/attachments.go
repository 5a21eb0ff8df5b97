package patron

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
)

// Attachment kinds: a notice is a communication the library sent to the
// user (an overdue letter, a hold-shelf notice), kept as it was sent; an
// upload is a file staff added (a signed registration form, say).
const (
	AttachmentNotice = "notice"
	AttachmentUpload = "upload"
)

// DefaultMaxAttachmentBytes is the largest attachment a Service accepts
// unless Options.MaxAttachmentBytes says otherwise: 10 MiB.
const DefaultMaxAttachmentBytes int64 = 10 << 20

// Attachment is a file kept on a user's record: a notice sent to the user
// or a file staff uploaded. It describes the file; the bytes are stored
// apart and read only by AttachmentContent, never by a list.
//
// The server sets id, size, created_by and created_date; whatever a caller
// puts there is ignored.
type Attachment struct {
	// ID is a time-ordered id (UUIDv7) the service assigns.
	ID string `json:"id" gorm:"primaryKey;size:36"`
	// UserID is the internal id of the user the file belongs to.
	UserID string `json:"-" gorm:"size:36;not null"`
	// FileName is the name the file is downloaded under: no slash,
	// backslash or control characters.
	FileName string `json:"file_name" gorm:"size:255;not null" validate:"required,max=255,filename"`
	// ContentType is the media type of the file (application/pdf, say);
	// application/octet-stream when none is given.
	ContentType string `json:"content_type" gorm:"size:127;not null" validate:"required,max=127,mediatype"`
	// Size is the length of the file in bytes.
	Size int64 `json:"size" gorm:"not null"`
	// Kind is notice or upload (the default).
	Kind string `json:"kind" gorm:"size:16;not null" validate:"required,oneof=notice upload"`
	// Description says what the file is, for staff (optional).
	Description string `json:"description,omitempty" gorm:"size:255" validate:"max=255"`
	// CreatedBy is the primary_id of who added the file (for a notice, the
	// job that sent it), from the context's Actor.
	CreatedBy   string    `json:"created_by" gorm:"size:255;not null"`
	CreatedDate time.Time `json:"created_date" gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Attachment) TableName() string { return "pk_user_attachments" }

// attachmentContent holds the bytes of one attachment, in a table of its
// own so that listing attachments never reads a file. The size tag makes
// GORM choose a column that holds any file the limit allows: LONGBLOB on
// MySQL (BLOB stops at 64 KiB, MEDIUMBLOB at 16 MiB), bytea on PostgreSQL,
// BLOB on SQLite.
type attachmentContent struct {
	AttachmentID string `gorm:"primaryKey;size:36"`
	Content      []byte `gorm:"size:4294967295;not null"`
}

// TableName implements gorm's Tabler.
func (attachmentContent) TableName() string { return "pk_user_attachment_contents" }

// MaxAttachmentBytes returns the largest file, in bytes, that AddAttachment
// accepts.
func (s *Service) MaxAttachmentBytes() int64 { return s.maxAttachment }

// AddAttachment keeps a file on a user's record. content is read to its
// end, or until it proves longer than MaxAttachmentBytes: a longer file, or
// an empty one, is Invalid (field content) and nothing is written.
//
// From a the service takes the file name, the content type (default
// application/octet-stream; parameters such as charset are kept), the kind
// (default upload) and the description. The id, the size, and who added
// the file and when (the context's Actor and the service clock) are set
// here whatever a says.
func (s *Service) AddAttachment(ctx context.Context, inst, primaryID string, a Attachment, content io.Reader) (*Attachment, error) {
	db := s.conn(ctx)
	u, err := findUser(db, inst, primaryID)
	if err != nil {
		return nil, err
	}
	var data []byte
	if content != nil {
		if data, err = io.ReadAll(io.LimitReader(content, s.maxAttachment+1)); err != nil {
			return nil, fmt.Errorf("patron: reading the attachment: %w", err)
		}
	}
	if int64(len(data)) > s.maxAttachment {
		return nil, &fault.Error{Kind: fault.Invalid, Detail: fmt.Sprintf("the file is larger than the limit of %d bytes", s.maxAttachment), Fields: []fault.FieldError{{
			Field: "content", Code: "too_large", Message: fmt.Sprintf("is larger than the limit of %d bytes", s.maxAttachment),
		}}}
	}
	out := Attachment{
		ID:          keys.NewID(),
		UserID:      u.ID,
		FileName:    strings.TrimSpace(a.FileName),
		ContentType: normalizeMediaType(a.ContentType),
		Size:        int64(len(data)),
		Kind:        strings.ToLower(strings.TrimSpace(a.Kind)),
		Description: strings.TrimSpace(a.Description),
		CreatedBy:   actorOf(ctx).ID,
		CreatedDate: s.clock(),
	}
	if out.Kind == "" {
		out.Kind = AttachmentUpload
	}
	if err := s.validateAttachment(&out); err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		// The user's row is held until the commit: a deletion of the user
		// at the same time waits, then removes this attachment too (see
		// Delete), or goes first, and the user is not found here.
		var held User
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("id").Where("id = ?", u.ID).Take(&held).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("no such user")
		}
		if err != nil {
			return err
		}
		if err := tx.Create(&out).Error; err != nil {
			return err
		}
		if err := tx.Create(&attachmentContent{AttachmentID: out.ID, Content: data}).Error; err != nil {
			return err
		}
		return s.record(ctx, inst, AuditUpdate, u.PrimaryID, "attachments") // commits with the attachment
	})
	if err != nil {
		return nil, s.translate(err)
	}
	return &out, nil
}

// Attachments lists a user's attachments, newest first, without their
// content, once the read is on the audit trail (or fails).
func (s *Service) Attachments(ctx context.Context, inst, primaryID string) ([]Attachment, error) {
	db := s.conn(ctx)
	u, err := findUser(db, inst, primaryID)
	if err != nil {
		return nil, err
	}
	out := []Attachment{}
	if err := db.Where("user_id = ?", u.ID).Order("created_date DESC, id DESC").Find(&out).Error; err != nil {
		return nil, err
	}
	if err := s.record(ctx, inst, AuditRead, u.PrimaryID, "attachments"); err != nil {
		return nil, err
	}
	return out, nil
}

// AttachmentContent returns one attachment of a user and its bytes, once
// the read is on the audit trail (or fails). An id that is not one of
// this user's attachments is NotFound, whoever it belongs to.
func (s *Service) AttachmentContent(ctx context.Context, inst, primaryID, id string) (*Attachment, []byte, error) {
	db := s.conn(ctx)
	u, err := findUser(db, inst, primaryID)
	if err != nil {
		return nil, nil, err
	}
	var a Attachment
	err = db.Where("id = ? AND user_id = ?", id, u.ID).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, notFound("the user has no attachment %q", id)
	}
	if err != nil {
		return nil, nil, err
	}
	var c attachmentContent
	err = db.Where("attachment_id = ?", a.ID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) { // removed meanwhile
		return nil, nil, notFound("the user has no attachment %q", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := s.record(ctx, inst, AuditRead, u.PrimaryID, "attachments"); err != nil {
		return nil, nil, err
	}
	return &a, c.Content, nil
}

// RemoveAttachment deletes one attachment of a user, content and all. An id
// that is not one of this user's attachments is NotFound.
func (s *Service) RemoveAttachment(ctx context.Context, inst, primaryID, id string) error {
	db := s.conn(ctx)
	u, err := findUser(db, inst, primaryID)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(ctx context.Context, tx *gorm.DB) error {
		res := tx.Where("id = ? AND user_id = ?", id, u.ID).Delete(&Attachment{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return notFound("the user has no attachment %q", id)
		}
		if err := tx.Where("attachment_id = ?", id).Delete(&attachmentContent{}).Error; err != nil {
			return err
		}
		return s.record(ctx, inst, AuditUpdate, u.PrimaryID, "attachments")
	})
	if err != nil {
		return s.translate(err)
	}
	return nil
}

// findUser reads the id and primary_id of a user, and nothing else.
func findUser(db *gorm.DB, inst, primaryID string) (*User, error) {
	var u User
	err := db.Select("id", "primary_id").Where("institution = ? AND primary_id_key = ?", inst, keys.Fold(primaryID)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound("no such user")
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// deleteAttachments removes every attachment of a user, content first.
func deleteAttachments(tx *gorm.DB, userID string, note func(table string, rows int64)) error {
	ids := tx.Session(&gorm.Session{NewDB: true}).Model(&Attachment{}).Select("id").Where("user_id = ?", userID)
	for _, q := range []struct {
		del   *gorm.DB
		model any
	}{
		{tx.Where("attachment_id IN (?)", ids), &attachmentContent{}},
		{tx.Where("user_id = ?", userID), &Attachment{}},
	} {
		res := q.del.Delete(q.model)
		if res.Error != nil {
			return res.Error
		}
		if note != nil {
			note(res.Statement.Table, res.RowsAffected)
		}
	}
	return nil
}

// validateAttachment checks a normalized attachment, and that it is not
// empty.
func (s *Service) validateAttachment(a *Attachment) error {
	var fields []fault.FieldError
	if err := s.validate.Struct(a); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			return err
		}
		for _, fe := range ves {
			fields = append(fields, fieldError(fe))
		}
	}
	for _, f := range TextErrors("", a) {
		if !slices.ContainsFunc(fields, func(g fault.FieldError) bool { return g.Field == f.Field }) {
			fields = append(fields, f)
		}
	}
	if a.Size == 0 {
		fields = append(fields, fault.FieldError{Field: "content", Code: "required", Message: "is empty: a file has at least one byte"})
	}
	if len(fields) > 0 {
		return &fault.Error{Kind: fault.Invalid, Detail: "the attachment is not valid", Fields: fields}
	}
	return nil
}

// normalizeMediaType writes a media type the canonical way (lower-case type
// and parameter names); application/octet-stream when empty. A value that
// is not a media type is returned as it is, for the validator to refuse.
func normalizeMediaType(ct string) string {
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return "application/octet-stream"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	if out := mime.FormatMediaType(mt, params); out != "" {
		return out
	}
	return ct
}
