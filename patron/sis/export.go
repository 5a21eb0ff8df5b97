package sis

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"io"

	"github.com/patronkit/patronkit/fault"
	"github.com/patronkit/patronkit/patron"
)

// What an export writes.
const (
	// ExportUsers writes whole user records.
	ExportUsers = "users"
	// ExportBlocks writes each user's primary_id and blocks.
	ExportBlocks = "blocks"
)

// Export writes the users of a profile (external users whose external_id
// names it), or only their blocks, as Alma user XML (a <users> root), the
// format the XML import reads back. It streams: a user is read, written and
// let go.
func (s *Service) Export(ctx context.Context, inst, code, what string, w io.Writer) error {
	if what != ExportUsers && what != ExportBlocks {
		return &fault.Error{Kind: fault.Invalid, Detail: "what must be users or blocks", Fields: []fault.FieldError{{Field: "what", Code: "unknown_value", Message: "must be one of: users, blocks"}}}
	}
	if _, err := s.Profile(ctx, inst, code); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := io.WriteString(bw, xml.Header+"<users>\n"); err != nil {
		return err
	}
	enc := xml.NewEncoder(bw)
	enc.Indent("  ", "  ")
	err := s.patrons.EachOfProfile(ctx, inst, code, func(u *patron.User) error {
		var x xmlUserOut
		if what == ExportBlocks {
			x = xmlUserOut{PrimaryID: u.PrimaryID, Blocks: blocksOut(u.Blocks)}
		} else {
			x = userOut(u)
		}
		if err := enc.Encode(x); err != nil {
			return err
		}
		_, err := io.WriteString(bw, "\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("sis: export: %w", err)
	}
	if _, err := io.WriteString(bw, "</users>\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// The shape of Alma's user XML, for writing.
type (
	xmlUserOut struct {
		XMLName           xml.Name       `xml:"user"`
		RecordType        string         `xml:"record_type,omitempty"`
		PrimaryID         string         `xml:"primary_id"`
		FirstName         string         `xml:"first_name,omitempty"`
		MiddleName        string         `xml:"middle_name,omitempty"`
		LastName          string         `xml:"last_name,omitempty"`
		UserTitle         string         `xml:"user_title,omitempty"`
		JobCategory       string         `xml:"job_category,omitempty"`
		JobDescription    string         `xml:"job_description,omitempty"`
		Gender            string         `xml:"gender,omitempty"`
		UserGroup         string         `xml:"user_group,omitempty"`
		CampusCode        string         `xml:"campus_code,omitempty"`
		PreferredLanguage string         `xml:"preferred_language,omitempty"`
		BirthDate         string         `xml:"birth_date,omitempty"`
		ExpiryDate        string         `xml:"expiry_date,omitempty"`
		PurgeDate         string         `xml:"purge_date,omitempty"`
		AccountType       string         `xml:"account_type,omitempty"`
		ExternalID        string         `xml:"external_id,omitempty"`
		Status            string         `xml:"status,omitempty"`
		Contact           *xmlContactOut `xml:"contact_info,omitempty"`
		Identifiers       *xmlIdentsOut  `xml:"user_identifiers,omitempty"`
		Blocks            *xmlBlocksOut  `xml:"user_blocks,omitempty"`
		Notes             *xmlNotesOut   `xml:"user_notes,omitempty"`
		Statistics        *xmlStatsOut   `xml:"user_statistics,omitempty"`
		ProxyFor          *xmlProxiesOut `xml:"proxy_for_users,omitempty"`
		RSLibraries       *xmlRSLibsOut  `xml:"rs_libraries,omitempty"`
	}
	xmlContactOut struct {
		Addresses *xmlAddressesOut `xml:"addresses,omitempty"`
		Emails    *xmlEmailsOut    `xml:"emails,omitempty"`
		Phones    *xmlPhonesOut    `xml:"phones,omitempty"`
	}
	// The list elements, left out whole when nil.
	xmlIdentsOut struct {
		List []xmlIdentOut `xml:"user_identifier"`
	}
	xmlBlocksOut struct {
		List []xmlBlockOut `xml:"user_block"`
	}
	xmlNotesOut struct {
		List []xmlNoteOut `xml:"user_note"`
	}
	xmlStatsOut struct {
		List []xmlStatOut `xml:"user_statistic"`
	}
	xmlProxiesOut struct {
		List []xmlProxyOut `xml:"proxy_for_user"`
	}
	xmlRSLibsOut struct {
		List []xmlRSLibOut `xml:"rs_library"`
	}
	xmlAddressesOut struct {
		List []xmlAddressOut `xml:"address"`
	}
	xmlEmailsOut struct {
		List []xmlEmailOut `xml:"email"`
	}
	xmlPhonesOut struct {
		List []xmlPhoneOut `xml:"phone"`
	}
	xmlAddressOut struct {
		Preferred     bool     `xml:"preferred,attr"`
		SegmentType   string   `xml:"segment_type,attr"`
		Line1         string   `xml:"line1"`
		Line2         string   `xml:"line2,omitempty"`
		Line3         string   `xml:"line3,omitempty"`
		Line4         string   `xml:"line4,omitempty"`
		Line5         string   `xml:"line5,omitempty"`
		City          string   `xml:"city,omitempty"`
		StateProvince string   `xml:"state_province,omitempty"`
		PostalCode    string   `xml:"postal_code,omitempty"`
		Country       string   `xml:"country,omitempty"`
		AddressNote   string   `xml:"address_note,omitempty"`
		StartDate     string   `xml:"start_date,omitempty"`
		EndDate       string   `xml:"end_date,omitempty"`
		Types         []string `xml:"address_types>address_type,omitempty"`
	}
	xmlEmailOut struct {
		Preferred    bool     `xml:"preferred,attr"`
		SegmentType  string   `xml:"segment_type,attr"`
		EmailAddress string   `xml:"email_address"`
		Description  string   `xml:"description,omitempty"`
		Types        []string `xml:"email_types>email_type,omitempty"`
	}
	xmlPhoneOut struct {
		Preferred    bool     `xml:"preferred,attr"`
		PreferredSMS bool     `xml:"preferred_sms,attr"`
		SegmentType  string   `xml:"segment_type,attr"`
		PhoneNumber  string   `xml:"phone_number"`
		Types        []string `xml:"phone_types>phone_type,omitempty"`
	}
	xmlIdentOut struct {
		SegmentType string `xml:"segment_type,attr"`
		IDType      string `xml:"id_type"`
		Value       string `xml:"value"`
		Note        string `xml:"note,omitempty"`
		Status      string `xml:"status,omitempty"`
	}
	xmlBlockOut struct {
		SegmentType      string `xml:"segment_type,attr"`
		BlockType        string `xml:"block_type"`
		BlockDescription string `xml:"block_description"`
		BlockStatus      string `xml:"block_status,omitempty"`
		BlockNote        string `xml:"block_note,omitempty"`
		ExpiryDate       string `xml:"expiry_date,omitempty"`
	}
	xmlNoteOut struct {
		SegmentType  string `xml:"segment_type,attr"`
		NoteType     string `xml:"note_type,omitempty"`
		NoteText     string `xml:"note_text"`
		UserViewable bool   `xml:"user_viewable"`
		PopupNote    bool   `xml:"popup_note"`
	}
	xmlStatOut struct {
		SegmentType       string `xml:"segment_type,attr"`
		StatisticCategory string `xml:"statistic_category"`
		CategoryType      string `xml:"category_type,omitempty"`
		StatisticNote     string `xml:"statistic_note,omitempty"`
	}
	xmlProxyOut struct {
		PrimaryID string `xml:"primary_id"`
	}
	xmlRSLibOut struct {
		Code string `xml:"code"`
	}
)

func userOut(u *patron.User) xmlUserOut {
	x := xmlUserOut{
		RecordType: u.RecordType, PrimaryID: u.PrimaryID, FirstName: u.FirstName, MiddleName: u.MiddleName, LastName: u.LastName,
		UserTitle: u.UserTitle, JobCategory: u.JobCategory, JobDescription: u.JobDescription, Gender: u.Gender,
		UserGroup: u.UserGroup, CampusCode: u.CampusCode, PreferredLanguage: u.PreferredLanguage,
		BirthDate: u.BirthDate, ExpiryDate: u.ExpiryDate, PurgeDate: u.PurgeDate,
		AccountType: u.AccountType, ExternalID: u.ExternalID, Status: u.Status,
		Blocks: blocksOut(u.Blocks),
	}
	if u.RSLibrary != "" {
		x.RSLibraries = &xmlRSLibsOut{List: []xmlRSLibOut{{Code: u.RSLibrary}}}
	}
	var addresses []xmlAddressOut
	for _, a := range u.Addresses {
		addresses = append(addresses, xmlAddressOut{Preferred: a.Preferred, SegmentType: a.SegmentType,
			Line1: a.Line1, Line2: a.Line2, Line3: a.Line3, Line4: a.Line4, Line5: a.Line5, City: a.City, StateProvince: a.StateProvince,
			PostalCode: a.PostalCode, Country: a.Country, AddressNote: a.AddressNote, StartDate: a.StartDate, EndDate: a.EndDate, Types: a.AddressTypes})
	}
	var emails []xmlEmailOut
	for _, e := range u.Emails {
		emails = append(emails, xmlEmailOut{Preferred: e.Preferred, SegmentType: e.SegmentType, EmailAddress: e.EmailAddress, Description: e.Description, Types: e.EmailTypes})
	}
	var phones []xmlPhoneOut
	for _, p := range u.Phones {
		phones = append(phones, xmlPhoneOut{Preferred: p.Preferred, PreferredSMS: p.PreferredSMS, SegmentType: p.SegmentType, PhoneNumber: p.PhoneNumber, Types: p.PhoneTypes})
	}
	if len(addresses)+len(emails)+len(phones) > 0 {
		x.Contact = &xmlContactOut{}
		if len(addresses) > 0 {
			x.Contact.Addresses = &xmlAddressesOut{List: addresses}
		}
		if len(emails) > 0 {
			x.Contact.Emails = &xmlEmailsOut{List: emails}
		}
		if len(phones) > 0 {
			x.Contact.Phones = &xmlPhonesOut{List: phones}
		}
	}
	var ids []xmlIdentOut
	for _, id := range u.Identifiers {
		ids = append(ids, xmlIdentOut{SegmentType: id.SegmentType, IDType: id.IDType, Value: id.Value, Note: id.Note, Status: id.Status})
	}
	if len(ids) > 0 {
		x.Identifiers = &xmlIdentsOut{List: ids}
	}
	var notes []xmlNoteOut
	for _, n := range u.Notes {
		notes = append(notes, xmlNoteOut{SegmentType: n.SegmentType, NoteType: n.NoteType, NoteText: n.NoteText, UserViewable: n.UserViewable, PopupNote: n.PopupNote})
	}
	if len(notes) > 0 {
		x.Notes = &xmlNotesOut{List: notes}
	}
	var stats []xmlStatOut
	for _, st := range u.Statistics {
		stats = append(stats, xmlStatOut{SegmentType: st.SegmentType, StatisticCategory: st.StatisticCategory, CategoryType: st.CategoryType, StatisticNote: st.StatisticNote})
	}
	if len(stats) > 0 {
		x.Statistics = &xmlStatsOut{List: stats}
	}
	var proxies []xmlProxyOut
	for _, p := range u.ProxyFor {
		proxies = append(proxies, xmlProxyOut{PrimaryID: p.PrimaryID})
	}
	if len(proxies) > 0 {
		x.ProxyFor = &xmlProxiesOut{List: proxies}
	}
	return x
}

func blocksOut(bs []patron.Block) *xmlBlocksOut {
	if len(bs) == 0 {
		return nil
	}
	out := &xmlBlocksOut{}
	for _, b := range bs {
		out.List = append(out.List, xmlBlockOut{SegmentType: b.SegmentType, BlockType: b.BlockType, BlockDescription: b.BlockDescription, BlockStatus: b.BlockStatus, BlockNote: b.BlockNote, ExpiryDate: b.ExpiryDate})
	}
	return out
}
