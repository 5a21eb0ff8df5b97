package almaapi

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/patronkit/patronkit/fault"
)

// Alma's error codes this API answers.
const (
	codeUnauthorized    = "UNAUTHORIZED"
	codeGeneral         = "60101"  // General Error: An error has occurred while processing the request.
	codeUserNotFound    = "401861" // User with identifier X was not found.
	codeUserTypeMissing = "401890" // User with identifier X of type Y was not found.
	codeInvalidXML      = "401676" // No valid XML was given.
	codeMandatory       = "401664" // Mandatory field is missing: X
	codeUserExists      = "401851" // User with identifier X of type Y already exists.
	codeFailedUpdate    = "401652" // General Error: An error has occurred while processing the request.
	codeNotSupported    = "401873" // The operation is not supported.
	codeParameter       = "401666" // X parameter is not valid.
	codeDeleteFailed    = "401850" // Failed to delete user with identifier X of type Y.
)

// almaErr is one error of Alma's web_service_result.
type almaErr struct {
	Code, Message string
}

// almaError answers Alma's error body with one error.
func (a *api) almaError(c *gin.Context, status int, code, message string) {
	a.almaErrors(c, status, []almaErr{{code, message}})
}

// almaErrors answers Alma's web_service_result, in XML or JSON as the
// request asks: errorsExist, errorList of errorCode, errorMessage and
// trackingId (the request id).
func (a *api) almaErrors(c *gin.Context, status int, errs []almaErr) {
	tracking := c.GetString(requestIDKey)
	if wantsXML(c) {
		type xmlErr struct {
			Code     string `xml:"errorCode"`
			Message  string `xml:"errorMessage"`
			Tracking string `xml:"trackingId"`
		}
		body := struct {
			XMLName xml.Name `xml:"http://com/exlibris/urm/general/xmlbeans web_service_result"`
			Exist   bool     `xml:"errorsExist"`
			List    []xmlErr `xml:"errorList>error"`
		}{Exist: true}
		for _, e := range errs {
			body.List = append(body.List, xmlErr{e.Code, e.Message, tracking})
		}
		out, _ := xml.Marshal(body)
		c.Data(status, "application/xml;charset=UTF-8", append([]byte(xmlHeader), out...))
		c.Abort()
		return
	}
	type jsonErr struct {
		Code     string `json:"errorCode"`
		Message  string `json:"errorMessage"`
		Tracking string `json:"trackingId"`
	}
	body := struct {
		Exist bool `json:"errorsExist"`
		List  struct {
			Error []jsonErr `json:"error"`
		} `json:"errorList"`
		Result any `json:"result"`
	}{Exist: true}
	for _, e := range errs {
		body.List.Error = append(body.List.Error, jsonErr{e.Code, e.Message, tracking})
	}
	out, _ := json.Marshal(body)
	c.Data(status, "application/json;charset=UTF-8", out)
	c.Abort()
}

// xmlHeader starts every XML body, as Alma writes it.
const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

// fail answers the Alma error err calls for: the services' refusals are
// 400 with Alma's code for the kind (a field error each, naming the
// field), anything else 500.
func (a *api) fail(c *gin.Context, err error) {
	var re *requestError
	if errors.As(err, &re) {
		a.almaError(c, http.StatusBadRequest, re.code, re.message)
		return
	}
	e, ok := fault.As(err)
	if !ok {
		_ = c.Error(err)
		a.almaError(c, http.StatusInternalServerError, codeGeneral, "General Error: An error has occurred while processing the request.")
		return
	}
	switch e.Kind {
	case fault.Invalid:
		var errs []almaErr
		for _, f := range e.Fields {
			code := codeParameter
			if f.Code == "required" {
				code = codeMandatory
			}
			errs = append(errs, almaErr{code, f.Field + ": " + f.Message})
		}
		if len(errs) == 0 {
			errs = []almaErr{{codeParameter, e.Detail}}
		}
		a.almaErrors(c, http.StatusBadRequest, errs)
	case fault.NotFound:
		a.almaError(c, http.StatusBadRequest, a.notFoundCode(c, e.Detail), e.Detail)
	case fault.Conflict:
		a.almaError(c, http.StatusBadRequest, codeUserExists, e.Detail)
	case fault.Refused, fault.Stale:
		msg := e.Detail
		if len(e.Reasons) > 0 {
			msg += ": " + strings.Join(e.Reasons, "; ")
		}
		a.almaError(c, http.StatusBadRequest, codeFailedUpdate, msg)
	case fault.Unauthenticated, fault.Forbidden:
		a.almaError(c, http.StatusUnauthorized, codeUnauthorized, unauthorizedMessage+" "+e.Detail)
	case fault.Locked:
		a.almaError(c, http.StatusTooManyRequests, codeGeneral, e.Detail)
	default:
		_ = c.Error(err)
		a.almaError(c, http.StatusInternalServerError, codeGeneral, "General Error: An error has occurred while processing the request.")
	}
}

// notFoundCode is Alma's code of a lookup that found nothing: the
// user's when detail says no user is found (the patron service's words),
// else the route's own (a fee, a loan...).
func (a *api) notFoundCode(c *gin.Context, detail string) string {
	noUser := strings.HasPrefix(detail, "no such user") || strings.HasPrefix(detail, "no user ")
	if rt, ok := c.Get(routeKey); ok && rt.(route).NotFound != "" && !noUser {
		return rt.(route).NotFound
	}
	if t := c.Query("user_id_type"); t != "" && !strings.EqualFold(t, "all_unique") {
		return codeUserTypeMissing
	}
	return codeUserNotFound
}

// requestError is a mistake of the request the adapter finds itself.
type requestError struct {
	code, message string
}

func (e *requestError) Error() string { return e.message }

func badParameter(name, why string) error {
	return &requestError{code: codeParameter, message: name + " parameter is not valid: " + why}
}
