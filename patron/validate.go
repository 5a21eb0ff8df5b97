package patron

import (
	"errors"
	"fmt"
	"mime"
	"reflect"
	"strings"
	"unicode"

	"github.com/go-playground/validator/v10"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/internal/keys"
)

// newValidator builds the validator that checks users: field names are the
// JSON names, so every failure names the field a client sent.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	// A file name is what a download is saved as: no path separator, no
	// control characters.
	_ = v.RegisterValidation("filename", func(fl validator.FieldLevel) bool {
		return !strings.ContainsFunc(fl.Field().String(), func(r rune) bool { return r == '/' || r == '\\' || unicode.IsControl(r) })
	})
	// A media type: type/subtype, optionally with parameters.
	_ = v.RegisterValidation("mediatype", func(fl validator.FieldLevel) bool {
		mt, _, err := mime.ParseMediaType(fl.Field().String())
		typ, sub, ok := strings.Cut(mt, "/")
		return err == nil && ok && typ != "" && sub != ""
	})
	return v
}

// validateUser checks a normalized user: struct rules, the text rule on
// every field (TextErrors), the primary_id rule (PrimaryIDError) unless the
// primary_id is held, the one the record had before (any case); then the
// rules that span entries (one preferred entry per contact kind, no
// identifier twice).
func (s *Service) validateUser(u *User, held string) error {
	var fields []fault.FieldError
	if err := s.validate.Struct(u); err != nil {
		var ves validator.ValidationErrors
		if !errors.As(err, &ves) {
			return err
		}
		for _, fe := range ves {
			fields = append(fields, fieldError(fe))
		}
	}
	for _, f := range TextErrors("", u) {
		if f.Field != "primary_id" { // the primary_id rule below says more
			fields = append(fields, f)
		}
	}
	if u.PrimaryID != "" && (held == "" || keys.Fold(held) != u.PrimaryIDKey) {
		if f := PrimaryIDError(u.PrimaryID); f != nil {
			fields = append(fields, *f)
		}
	}
	fields = append(fields, preferredRule("emails", len(u.Emails), func(i int) bool { return u.Emails[i].Preferred })...)
	fields = append(fields, preferredRule("phones", len(u.Phones), func(i int) bool { return u.Phones[i].Preferred })...)
	fields = append(fields, preferredRule("addresses", len(u.Addresses), func(i int) bool { return u.Addresses[i].Preferred })...)
	smsCount := 0
	for i, p := range u.Phones {
		if p.PreferredSMS {
			smsCount++
			if smsCount > 1 {
				fields = append(fields, fault.FieldError{Field: fmt.Sprintf("phones[%d].preferred_sms", i), Code: "one_preferred", Message: "only one phone may be preferred for SMS"})
			}
		}
	}
	seen := map[[2]string]int{}
	for i, id := range u.Identifiers {
		k := [2]string{id.IDType, id.ValueKey}
		if j, dup := seen[k]; dup {
			fields = append(fields, fault.FieldError{Field: fmt.Sprintf("user_identifiers[%d].value", i), Code: "duplicate", Message: fmt.Sprintf("identifier %s %q is listed twice (also user_identifiers[%d])", id.IDType, id.Value, j)})
		}
		seen[k] = i
	}
	if len(fields) > 0 {
		return invalid(fields...)
	}
	return nil
}

func preferredRule(kind string, n int, preferred func(int) bool) []fault.FieldError {
	var out []fault.FieldError
	count := 0
	for i := 0; i < n; i++ {
		if preferred(i) {
			count++
			if count > 1 {
				out = append(out, fault.FieldError{Field: fmt.Sprintf("%s[%d].preferred", kind, i), Code: "one_preferred", Message: "only one of the " + kind + " may be preferred"})
			}
		}
	}
	return out
}

func fieldError(fe validator.FieldError) fault.FieldError {
	field := fe.Namespace()
	if _, rest, ok := strings.Cut(field, "."); ok {
		field = rest // drop the struct name
	}
	field = strings.ReplaceAll(field, ".Segment.", ".") // embedded, not a JSON level
	f := fault.FieldError{Field: field, Code: fe.Tag()}
	switch fe.Tag() {
	case "required", "required_if":
		f.Code = "required"
		f.Message = "is required"
	case "max":
		if fe.Kind() == reflect.Slice {
			f.Message = "has more than " + fe.Param() + " entries"
		} else {
			f.Message = "is longer than " + fe.Param() + " characters"
		}
		f.Code = "too_long"
	case "min":
		f.Code = "too_short"
		f.Message = "is shorter than " + fe.Param() + " characters"
	case "oneof":
		f.Code = "unknown_value"
		f.Message = "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "email":
		f.Code = "bad_format"
		f.Message = "is not an email address"
	case "filename":
		f.Code = "bad_format"
		f.Message = "must not contain a slash, a backslash or control characters"
	case "mediatype":
		f.Code = "bad_format"
		f.Message = "is not a media type such as application/pdf"
	case "datetime":
		f.Code = "bad_format"
		f.Message = "is not a date written YYYY-MM-DD"
	default:
		f.Message = "fails the " + fe.Tag() + " rule"
	}
	return f
}

// Warnings says what staff should know about a valid record: a contact kind
// with entries but none preferred.
func Warnings(u *User) []string {
	var w []string
	check := func(kind string, n int, preferred func(int) bool) {
		if n == 0 {
			return
		}
		for i := 0; i < n; i++ {
			if preferred(i) {
				return
			}
		}
		w = append(w, "no preferred "+kind+": the user has "+kind+"s but none is marked preferred")
	}
	check("address", len(u.Addresses), func(i int) bool { return u.Addresses[i].Preferred })
	check("email", len(u.Emails), func(i int) bool { return u.Emails[i].Preferred })
	check("phone", len(u.Phones), func(i int) bool { return u.Phones[i].Preferred })
	return w
}
