package sis

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/patronkit/patronkit/internal/conformance"
	"github.com/patronkit/patronkit/patron"
)

// FuzzReadAPIUser feeds arbitrary bodies of Alma's users API, as XML and
// as JSON: never a panic; a user read is written back, in each format,
// into a body that reads into the same user.
func FuzzReadAPIUser(f *testing.F) {
	if dir := conformance.Find(); dir != "" {
		for _, pattern := range []string{"*.xml", "*.json"} {
			files, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, path := range files {
				if data, err := os.ReadFile(path); err == nil {
					f.Add(data, bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")))
				}
			}
		}
	}
	for _, doc := range []string{
		fullUser, `<user/>`, `<users/>`, `{}`, `[]`, `{"primary_id":"a","contact_info":{"email":[{"email_address":"x","segment_type":"External"}]}}`,
		`<user><user_notes><user_note segment_type="internal"><note_text>n</note_text></user_note></user_notes></user>`,
	} {
		f.Add([]byte(doc), doc[0] == '<')
	}
	f.Fuzz(func(t *testing.T, data []byte, asXML bool) {
		u, _, err := ReadAPIUser(data, asXML, Limits{MaxUserBytes: 4096})
		if err != nil {
			return
		}
		// Written and read once more in each format, a user stays as it
		// is (XML trims values as SIS files are read; JSON keeps them).
		for _, inXML := range []bool{true, false} {
			once := roundTrip(t, u, inXML)
			if twice := roundTrip(t, once, inXML); !reflect.DeepEqual(once, twice) {
				t.Fatalf("xml %v: a user changes each time it is written and read:\n%+v\n%+v", inXML, once, twice)
			}
		}
	})
}

// roundTrip writes u as Alma's API does and reads it back.
func roundTrip(t *testing.T, u *patron.User, inXML bool) *patron.User {
	t.Helper()
	var body []byte
	if inXML {
		var x bytes.Buffer
		if err := WriteAPIUserXML(&x, u, nil); err != nil {
			t.Fatalf("writing XML: %v", err)
		}
		body = x.Bytes()
	} else {
		j, err := APIUserJSON(u, nil)
		if err != nil {
			t.Fatalf("writing JSON: %v", err)
		}
		body = j
	}
	out, _, err := ReadAPIUser(body, inXML, Limits{})
	if err != nil {
		t.Fatalf("what was written does not read back: %v\n%s", err, body)
	}
	return out
}

// Alma's own single users (Ex Libris's example in XML and JSON, a real
// answer of Alma's API) read as bodies of the API; the example's XML and
// JSON read alike, but for what the two files themselves say apart.
func TestAlmasUserSamplesReadAsAPIBodies(t *testing.T) {
	dir := conformance.AlmaDir(t)
	read := func(name string) *patron.User {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		u, _, err := ReadAPIUser(data, filepath.Ext(name) == ".xml", Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return u
	}
	x, j := read("exlibris_doc_example_user.xml"), read("exlibris_doc_example_user.json")
	for _, u := range []*patron.User{x, j} {
		if u.PrimaryID != "johns" || u.LastName != "Smith" || u.UserGroup != "08" || u.BirthDate != "1979-01-11" || len(u.Identifiers) != 1 ||
			u.Identifiers[0].SegmentType != "" || len(u.Addresses) != 1 || len(u.Phones) != 1 || len(u.Blocks) != 1 || len(u.Notes) != 1 {
			t.Errorf("Ex Libris's example read as %+v", u)
		}
	}
	if u := read("uio_user_response.json"); u.PrimaryID == "" || u.LastName == "" {
		t.Errorf("a real answer read as %+v", u)
	}
}
