package sis

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/patron"
)

// xmlNode is an element of an XML document, read whole.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Kids    []xmlNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// xsdType is what Alma's schema says of an element's content: child
// elements (in sequence or in any order) or text of a simple type, and
// attributes.
type xsdType struct {
	sequence bool
	elems    []xsdElem
	attrs    map[string]bool
	simple   string // the simple type of text content, or ""
}

type xsdElem struct {
	name     string
	typ      *xsdType // nil: text of the simple type simple
	simple   string
	required bool
}

// almaSchema reads the complex types and the string lengths of Alma's
// rest_users.xsd and rest_user.xsd: enough to check what the export
// writes, not a whole XSD processor.
type almaSchema struct {
	types   map[string]*xsdType
	lengths map[string]int // simple type → maxLength
}

func loadAlmaSchema(t *testing.T, dir string) *almaSchema {
	t.Helper()
	s := &almaSchema{types: map[string]*xsdType{}, lengths: map[string]int{}}
	for _, name := range []string{"rest_users.xsd", "rest_user.xsd"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var root xmlNode
		if err := xml.Unmarshal(data, &root); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range root.Kids {
			switch n.XMLName.Local {
			case "complexType":
				s.types[n.attr("name")] = s.complexType(&n)
			case "simpleType":
				for _, r := range n.Kids {
					for _, f := range r.Kids {
						if f.XMLName.Local == "maxLength" {
							s.lengths[n.attr("name")], _ = strconv.Atoi(f.attr("value"))
						}
					}
				}
			}
		}
	}
	return s
}

// complexType reads a complexType declaration.
func (s *almaSchema) complexType(n *xmlNode) *xsdType {
	ct := &xsdType{attrs: map[string]bool{}}
	for i := range n.Kids {
		k := &n.Kids[i]
		switch k.XMLName.Local {
		case "sequence", "all":
			ct.sequence = k.XMLName.Local == "sequence"
			for j := range k.Kids {
				if k.Kids[j].XMLName.Local == "element" {
					ct.elems = append(ct.elems, s.element(&k.Kids[j]))
				}
			}
		case "attribute":
			ct.attrs[k.attr("name")] = true
		case "simpleContent":
			for _, ext := range k.Kids {
				ct.simple = ext.attr("base")
				for _, a := range ext.Kids {
					if a.XMLName.Local == "attribute" {
						ct.attrs[a.attr("name")] = true
					}
				}
			}
		}
	}
	return ct
}

// element reads an element declaration; a named type is resolved when an
// element is checked, every type being read by then.
func (s *almaSchema) element(n *xmlNode) xsdElem {
	e := xsdElem{name: n.attr("name"), required: n.attr("minOccurs") != "0"}
	for i := range n.Kids {
		if n.Kids[i].XMLName.Local == "complexType" {
			e.typ = s.complexType(&n.Kids[i])
			return e
		}
	}
	e.simple = n.attr("type")
	return e
}

func (s *almaSchema) resolve(e xsdElem) xsdElem {
	if ct, ok := s.types[e.simple]; ok && e.typ == nil {
		e.typ, e.simple = ct, ""
	}
	return e
}

var xsdDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?$`)

// checkText checks text against a simple type of the schema.
func (s *almaSchema) checkText(path, typ, text string) error {
	switch typ {
	case "xs:date":
		if !xsdDate.MatchString(text) {
			return fmt.Errorf("%s: %q is not an xs:date", path, text)
		}
	case "xs:dateTime":
		if _, err := time.Parse(time.RFC3339, text); err != nil {
			if _, err := time.Parse("2006-01-02T15:04:05", text); err != nil {
				return fmt.Errorf("%s: %q is not an xs:dateTime", path, text)
			}
		}
	case "xs:boolean":
		if text != "true" && text != "false" && text != "1" && text != "0" {
			return fmt.Errorf("%s: %q is not an xs:boolean", path, text)
		}
	default:
		if max, ok := s.lengths[typ]; ok && utf8.RuneCountInString(text) > max {
			return fmt.Errorf("%s: %d characters, more than %s allows", path, utf8.RuneCountInString(text), typ)
		}
	}
	return nil
}

// check checks the element n, of the type ct, and what it holds.
func (s *almaSchema) check(path string, n *xmlNode, ct *xsdType) []error {
	var errs []error
	for _, a := range n.Attrs {
		if !ct.attrs[a.Name.Local] {
			errs = append(errs, fmt.Errorf("%s: the attribute %s is not in Alma's schema", path, a.Name.Local))
		}
	}
	if ct.simple != "" {
		if err := s.checkText(path, ct.simple, n.Text); err != nil {
			errs = append(errs, err)
		}
		return errs
	}
	seen, last := map[string]bool{}, -1
	for i := range n.Kids {
		k := &n.Kids[i]
		kpath := path + "/" + k.XMLName.Local
		at := -1
		for j, e := range ct.elems {
			if e.name == k.XMLName.Local {
				at = j
			}
		}
		if at < 0 {
			errs = append(errs, fmt.Errorf("%s: not an element of Alma's schema here", kpath))
			continue
		}
		if ct.sequence && at < last {
			errs = append(errs, fmt.Errorf("%s: out of the order Alma's schema sets", kpath))
		}
		last, seen[k.XMLName.Local] = at, true
		e := s.resolve(ct.elems[at])
		if e.typ != nil {
			errs = append(errs, s.check(kpath, k, e.typ)...)
			continue
		}
		if len(k.Attrs) > 0 {
			errs = append(errs, fmt.Errorf("%s: attributes on an element of simple type", kpath))
		}
		if err := s.checkText(kpath, e.simple, k.Text); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range ct.elems {
		if e.required && !seen[e.name] {
			errs = append(errs, fmt.Errorf("%s: the required element %s is missing", path, e.name))
		}
	}
	return errs
}

// TestExportFollowsAlmasSchema checks the XML the export writes against
// Alma's rest_users.xsd: elements where the schema declares them, in its
// order where it has one, required elements present, declared attributes
// only, dates, date-times, booleans and lengths as it types them.
// (xmllint --schema rest_users.xsd checks the same files in full.)
func TestExportFollowsAlmasSchema(t *testing.T) {
	schema := loadAlmaSchema(t, conformance.AlmaDir(t))
	users := schema.types["users"]
	if users == nil || schema.types["user"] == nil || schema.lengths["string255Length"] != 255 {
		t.Fatal("Alma's schema was not read")
	}
	full := fullPatron()
	for name, u := range map[string]*patron.User{
		"every field":   full,
		"blocks only":   {PrimaryID: full.PrimaryID, Blocks: full.Blocks},
		"a plain user":  {PrimaryID: "p", FirstName: "P", LastName: "L"},
		"contacts only": {PrimaryID: "c", Emails: full.Emails},
	} {
		t.Run(name, func(t *testing.T) {
			var doc bytes.Buffer
			doc.WriteString(xml.Header + "<users>\n")
			if err := newXMLWriter(&doc).user(u); err != nil {
				t.Fatal(err)
			}
			doc.WriteString("</users>\n")
			var root xmlNode
			if err := xml.Unmarshal(doc.Bytes(), &root); err != nil {
				t.Fatal(err)
			}
			for _, err := range schema.check("users", &root, users) {
				t.Error(err)
			}
			if t.Failed() {
				t.Logf("the export:\n%s", strings.TrimSpace(doc.String()))
			}
		})
	}
}
