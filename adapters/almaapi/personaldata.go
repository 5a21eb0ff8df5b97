package almaapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"
)

// personalDataRoutes are Alma's route on a user's personal data.
func (a *api) personalDataRoutes() []route {
	return []route{
		{http.MethodGet, "/users/:user_id/personal-data", "users.personal_data", true, "", a.personalData},
	}
}

// personalData answers everything the kit holds about the user as one
// document, as the native API does (its export on the audit trail), each
// attachment linked to its route here: JSON as the native API writes it,
// or the same in XML under <personal_data> (one element a key, a list's
// items each an element of the list's name).
func (a *api) personalData(c *gin.Context) {
	who, ok := a.pathUser(c)
	if !ok {
		return
	}
	pid := who.PrimaryID
	doc, err := a.kit.PersonalData.PersonalData(a.ctx(c), a.inst(c), pid)
	if err != nil {
		a.fail(c, err)
		return
	}
	for i := range doc.Attachments {
		doc.Attachments[i].Link = a.link(c, "users", doc.User.PrimaryID, "attachments", doc.Attachments[i].ID)
	}
	j, err := json.Marshal(doc)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !wantsXML(c) {
		a.writeJSON(c, http.StatusOK, j)
		return
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		a.fail(c, err)
		return
	}
	a.writeXML(c, http.StatusOK, func(w io.Writer) error {
		enc := xml.NewEncoder(w)
		enc.Indent("", "  ")
		if err := jsonToXML(enc, "personal_data", tree); err != nil {
			return err
		}
		return enc.Flush()
	})
}

// jsonToXML writes a JSON value as the element name: an object's keys as
// child elements (in order of name), a list's items as elements of the
// list's name, a value as text; null as an empty element.
func jsonToXML(enc *xml.Encoder, name string, v any) error {
	if list, ok := v.([]any); ok {
		for _, item := range list {
			if err := jsonToXML(enc, name, item); err != nil {
				return err
			}
		}
		return nil
	}
	start := xml.StartElement{Name: xml.Name{Local: name}}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := jsonToXML(enc, k, x[k]); err != nil {
				return err
			}
		}
	case string:
		if err := enc.EncodeToken(xml.CharData(x)); err != nil {
			return err
		}
	case json.Number:
		if err := enc.EncodeToken(xml.CharData(x.String())); err != nil {
			return err
		}
	case bool:
		if err := enc.EncodeToken(xml.CharData(strconv.FormatBool(x))); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}
