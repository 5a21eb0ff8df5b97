package sip2_test

// A SIP2 client written from the protocol (3M SIP2 2.00), not from the
// server's code: it builds requests, adds the sequence number and the
// checksum, and reads answers by their fixed lengths and field ids.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"
)

// answerFixed are the lengths of the fixed part of each answer, after
// its two-digit command.
var answerFixed = map[string]int{
	"94": 1, "98": 34, "24": 35, "64": 59, "12": 22, "10": 22, "30": 22,
	"66": 27, "18": 24, "38": 19, "36": 19, "96": 0, "16": 20, "20": 19, "26": 35,
}

// kiosk is one self-check machine's connection.
type kiosk struct {
	t       testing.TB
	nc      net.Conn
	r       *bufio.Reader
	seq     int
	sums    bool             // add AY/AZ to requests
	charset *charmap.Charmap // nil: UTF-8
	// fatal ends the test, or (set by a test running kiosks in
	// goroutines) the goroutine. Default: t.Fatalf.
	fatal func(format string, args ...any)
}

func (k *kiosk) fatalf(format string, args ...any) {
	if k.fatal != nil {
		k.fatal(format, args...)
		return
	}
	k.t.Helper()
	k.t.Fatalf(format, args...)
}

func dial(t testing.TB, addr string) *kiosk {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &kiosk{t: t, nc: nc, r: bufio.NewReader(nc), sums: true}
}

func dialTLS(t testing.TB, addr string, cfg *tls.Config) *kiosk {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &kiosk{t: t, nc: nc, r: bufio.NewReader(nc), sums: true}
}

// sipSum is the checksum of the protocol: the two's complement of the
// 16-bit sum of the bytes, as four uppercase hex digits.
func sipSum(b []byte) string {
	var sum int
	for _, c := range b {
		sum += int(c)
	}
	return fmt.Sprintf("%04X", (-sum)&0xFFFF)
}

func (k *kiosk) bytesOf(s string) []byte {
	if k.charset == nil {
		return []byte(s)
	}
	b, err := k.charset.NewEncoder().Bytes([]byte(s))
	if err != nil {
		k.fatalf("encoding %q: %v", s, err)
	}
	return b
}

func (k *kiosk) textOf(b []byte) string {
	if k.charset == nil {
		return string(b)
	}
	out, err := k.charset.NewDecoder().Bytes(b)
	if err != nil {
		k.fatalf("decoding: %v", err)
	}
	return string(out)
}

// frame is msg as sent: in the kiosk's character set, with AY and AZ
// when the kiosk adds them, ended by CR.
func (k *kiosk) frame(msg string) []byte {
	b := k.bytesOf(msg)
	if k.sums {
		b = append(b, fmt.Sprintf("AY%dAZ", k.seq)...)
		b = append(b, sipSum(b)...)
	}
	return append(b, '\r')
}

// writeRaw sends bytes as they are.
func (k *kiosk) writeRaw(b []byte) {
	k.t.Helper()
	if _, err := k.nc.Write(b); err != nil {
		k.fatalf("writing: %v", err)
	}
}

// send sends msg and reads the answer; the sequence number goes on.
func (k *kiosk) send(msg string) reply {
	k.t.Helper()
	k.writeRaw(k.frame(msg))
	rp := k.read()
	k.seq = (k.seq + 1) % 10
	return rp
}

// reply is an answer read.
type reply struct {
	raw    string
	code   string
	fixed  string
	fields map[string][]string
	seq    string
	sum    bool
}

// f is the first value of field id ("" when absent); has tells whether
// it is there.
func (r reply) f(id string) string {
	if v := r.fields[id]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (r reply) has(id string) bool { return len(r.fields[id]) > 0 }

// read reads one answer, checks its checksum when it has one, and
// splits it.
func (k *kiosk) read() reply {
	k.t.Helper()
	k.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := k.r.ReadBytes('\r')
	if err != nil {
		k.fatalf("reading an answer: %v (read %q)", err, line)
	}
	line = line[:len(line)-1]
	rp := reply{fields: map[string][]string{}}
	if n := len(line); n >= 6 && string(line[n-6:n-4]) == "AZ" {
		if got, want := string(line[n-4:]), sipSum(line[:n-4]); got != want {
			k.fatalf("answer %q: checksum %s, want %s", line, got, want)
		}
		rp.sum = true
		line = line[:n-6]
		if n := len(line); n >= 3 && string(line[n-3:n-1]) == "AY" {
			rp.seq = string(line[n-1])
			line = line[:n-3]
		}
	}
	text := k.textOf(line)
	rp.raw = text
	if len(text) < 2 {
		k.fatalf("answer %q has no command", text)
	}
	rp.code = text[:2]
	n, ok := answerFixed[rp.code]
	if !ok {
		k.fatalf("answer %q: unexpected command %s", text, rp.code)
	}
	rest := []rune(text[2:])
	if len(rest) < n {
		k.fatalf("answer %q: fixed part shorter than %d", text, n)
	}
	rp.fixed = string(rest[:n])
	for _, f := range strings.Split(string(rest[n:]), "|") {
		if f == "" {
			continue
		}
		if len(f) < 2 {
			k.fatalf("answer %q: field %q has no id", text, f)
		}
		rp.fields[f[:2]] = append(rp.fields[f[:2]], f[2:])
	}
	return rp
}

// A date field as requests send it: now, local time, blank zone.
func sipNow() string { return time.Now().Format("20060102") + "    " + time.Now().Format("150405") }

// Requests, by the protocol's layout.

func login(user, pw, location string) string {
	return "9300CN" + user + "|CO" + pw + "|CP" + location + "|"
}

func scStatus() string { return "9900302.00" }

func patronStatus(inst, patronID, pin string) string {
	return "23001" + sipNow() + "AO" + inst + "|AA" + patronID + "|AC|AD" + pin + "|"
}

// patronInfo asks for the summary list at position (0-5; -1: none),
// items from..to (0: not sent).
func patronInfo(inst, patronID, pin string, list, from, to int) string {
	summary := []byte("          ")
	if list >= 0 {
		summary[list] = 'Y'
	}
	m := "63001" + sipNow() + string(summary) + "AO" + inst + "|AA" + patronID + "|AC|AD" + pin + "|"
	if from > 0 {
		m += fmt.Sprintf("BP%d|BQ%d|", from, to)
	}
	return m
}

func checkout(inst, patronID, pin, barcode string) string {
	return "11YN" + sipNow() + "                  " + "AO" + inst + "|AA" + patronID + "|AB" + barcode + "|AC|AD" + pin + "|"
}

func checkin(inst, barcode string) string {
	return "09N" + sipNow() + sipNow() + "AP|AO" + inst + "|AB" + barcode + "|AC|"
}

func renew(inst, patronID, pin, barcode string) string {
	return "29NN" + sipNow() + "                  " + "AO" + inst + "|AA" + patronID + "|AD" + pin + "|AB" + barcode + "|"
}

func renewAll(inst, patronID, pin string) string {
	return "65" + sipNow() + "AO" + inst + "|AA" + patronID + "|AD" + pin + "|AC|"
}

func itemInfo(inst, barcode string) string {
	return "17" + sipNow() + "AO" + inst + "|AB" + barcode + "|AC|"
}

func feePaid(inst, patronID, pin, amount, cur, feeID string) string {
	m := "37" + sipNow() + "01" + "00" + cur + "BV" + amount + "|AO" + inst + "|AA" + patronID + "|AC|AD" + pin + "|"
	if feeID != "" {
		m += "CG" + feeID + "|"
	}
	return m
}

func blockPatron(inst, patronID, msg string) string {
	return "01N" + sipNow() + "AO" + inst + "|AL" + msg + "|AA" + patronID + "|AC|"
}

func endSession(inst, patronID string) string {
	return "35" + sipNow() + "AO" + inst + "|AA" + patronID + "|AC|AD|"
}
