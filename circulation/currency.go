package circulation

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/bojanz/currency"

	"github.com/patronkit/patronkit/fault"
)

// DefaultMaxFee is the default of Options.MaxFee: 1,000,000.00 in a
// currency of two decimals.
const DefaultMaxFee int64 = 100_000_000

// MaxFeeLimit is the most Options.MaxFee may be: 10,000,000,000,000.00 in
// a currency of two decimals, well below 2^53, so that every fee is exact
// in a client that reads JSON numbers as doubles.
const MaxFeeLimit int64 = 1_000_000_000_000_000

// Currency is a currency the institutions accept (Options.Currencies),
// with its rate: what one unit of it (a whole euro, not a cent) is worth
// in the first currency of the list, written as a decimal ("1.08").
//
// The rates weigh what a patron owes in every currency against a balance
// limit (BlockLimit) in one of them: a patron owing 5,000.00 EUR is over a
// limit of 10.00 USD when EUR is accepted at any rate above 0.0002. They
// are used for nothing else: fees are charged, paid and listed in their
// own currency, never converted.
type Currency struct {
	// Code is the ISO 4217 code (e.g. USD; any case, kept in upper case).
	Code string
	// Rate is the worth of one unit in the first currency of the list, a
	// decimal more than 0; the first currency's rate is 1 and may be left
	// empty. Required for every other currency.
	Rate string
}

// currencies are the accepted currencies of a Service, with their rates.
type currencies struct {
	codes []string
	rates map[string]*big.Rat
}

// newCurrencies checks and reads the accepted currencies; none is USD
// alone.
func newCurrencies(list []Currency) (currencies, error) {
	if len(list) == 0 {
		list = []Currency{{Code: "USD"}}
	}
	out := currencies{rates: map[string]*big.Rat{}}
	for i, c := range list {
		code := strings.ToUpper(strings.TrimSpace(c.Code))
		if !isCurrency(code) {
			return currencies{}, fmt.Errorf("circulation: currency %q is not an ISO 4217 currency code", c.Code)
		}
		if _, dup := out.rates[code]; dup {
			return currencies{}, fmt.Errorf("circulation: currency %s is listed twice", code)
		}
		rate := new(big.Rat).SetInt64(1)
		switch r := strings.TrimSpace(c.Rate); {
		case r == "" && i == 0:
		case r == "":
			return currencies{}, fmt.Errorf("circulation: currency %s needs a rate (its worth in %s)", code, out.codes[0])
		default:
			if !isDecimal(r) {
				return currencies{}, fmt.Errorf("circulation: the rate %q of %s is not a decimal more than 0", c.Rate, code)
			}
			if _, ok := rate.SetString(r); !ok || rate.Sign() <= 0 {
				return currencies{}, fmt.Errorf("circulation: the rate %q of %s is not a decimal more than 0", c.Rate, code)
			}
			if i == 0 && rate.Cmp(big.NewRat(1, 1)) != 0 {
				return currencies{}, fmt.Errorf("circulation: the rate of %s, the first currency, is 1 (not %s)", code, r)
			}
		}
		out.codes = append(out.codes, code)
		out.rates[code] = rate
	}
	return out, nil
}

// isDecimal tells whether s is written as a plain decimal: digits, with
// at most one point (no sign, exponent or fraction bar).
func isDecimal(s string) bool {
	n, points := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			n++
		case r == '.':
			points++
		default:
			return false
		}
	}
	return n > 0 && points <= 1
}

// accepts tells whether code is an accepted currency.
func (cs currencies) accepts(code string) bool {
	_, ok := cs.rates[code]
	return ok
}

// check checks a currency code (already upper case): required, ISO 4217,
// accepted.
func (cs currencies) check(c *checker, field, v string) {
	switch {
	case v == "":
		c.add(field, "required", "is required")
	case !isCurrency(v):
		c.add(field, "bad_format", "is not an ISO 4217 currency code (e.g. %s)", cs.codes[0])
	case !cs.accepts(v):
		c.add(field, "unknown_value", "is not a currency the library accepts (%s)", strings.Join(cs.codes, ", "))
	}
}

// isCurrency tells whether code is an ISO 4217 code of a currency in use
// (not a fund, a metal or a testing code, nor one withdrawn).
func isCurrency(code string) bool {
	return code != "" && currency.IsValid(code)
}

// digits is the number of decimals of a currency's minor unit (ISO 4217):
// 2 for most, 0 for JPY, 3 for KWD; 2 for a code not in use.
func digits(code string) int {
	if d, ok := currency.GetDigits(code); ok {
		return int(d)
	}
	return 2
}

// FormatMoney writes an amount of minor units with its currency, e.g.
// FormatMoney(1250, "USD") is "12.50 USD", using the currency's number of
// decimals in ISO 4217 (0 for JPY, 3 for KWD, 2 for most, and for a code
// that is not a currency in use).
func FormatMoney(amount int64, currency string) string {
	d := digits(currency)
	sign := ""
	u := uint64(amount)
	if amount < 0 {
		sign, u = "-", uint64(-(amount+1))+1
	}
	if d == 0 {
		return fmt.Sprintf("%s%d %s", sign, u, currency)
	}
	p := uint64(1)
	for range d {
		p *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, u/p, d, u%p, currency)
}

// AddOwed adds two amounts owed (minor units of one currency), stopping at
// the largest int64 rather than overflowing (which no sum of fees within
// MaxFee reaches): for callers that total fees or fines themselves.
func AddOwed(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

// errNoRate is returned by convert for a currency without a rate.
var errNoRate = errors.New("no rate")

// convert gives amount minor units of from in minor units of to, exactly,
// at the accepted currencies' rates.
func (cs currencies) convert(amount int64, from, to string) (*big.Rat, error) {
	v := new(big.Rat).SetInt64(amount)
	if from == to {
		return v, nil
	}
	rf, ok1 := cs.rates[from]
	rt, ok2 := cs.rates[to]
	if !ok1 || !ok2 {
		return nil, errNoRate
	}
	v.Mul(v, rf)
	v.Quo(v, rt)
	v.Mul(v, pow10(digits(to)))
	return v.Quo(v, pow10(digits(from))), nil
}

func pow10(n int) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))
}

// overLimit weighs what a patron owes, per currency, against a balance
// limit of max minor units of cur: every amount owed counts, converted at
// the rates, and one in a currency without a rate is over any limit. It
// returns whether the patron is over the limit, and the reason of the
// block (ReasonBalanceLimit).
func (cs currencies) overLimit(who string, owed map[string]int64, max int64, cur string) (bool, fault.Reason) {
	codes := make([]string, 0, len(owed))
	for c, v := range owed {
		if v > 0 {
			codes = append(codes, c)
		}
	}
	// The limit's currency first, then the others by code.
	slices.SortFunc(codes, func(a, b string) int {
		switch {
		case a == cur:
			return -1
		case b == cur:
			return 1
		}
		return strings.Compare(a, b)
	})
	total := new(big.Rat)
	var parts, noRate []string
	for _, c := range codes {
		parts = append(parts, FormatMoney(owed[c], c))
		v, err := cs.convert(owed[c], c, cur)
		if err != nil {
			noRate = append(noRate, c)
			continue
		}
		total.Add(total, v)
	}
	args := []string{"primary_id", who, "owed", strings.Join(parts, ", "), "limit", FormatMoney(max, cur)}
	switch {
	case len(noRate) > 0:
		return true, cause(ReasonBalanceLimit, append(args, "no_rate", strings.Join(noRate, ", "))...)
	case total.Cmp(new(big.Rat).SetInt64(max)) <= 0:
		return false, fault.Reason{}
	case len(codes) == 1 && codes[0] == cur:
		return true, cause(ReasonBalanceLimit, args...)
	default:
		// Rounded up: what is shown is more than the limit, as it is.
		up := new(big.Int).Quo(new(big.Int).Add(total.Num(), new(big.Int).Sub(total.Denom(), big.NewInt(1))), total.Denom())
		shown := "more than " + FormatMoney(math.MaxInt64, cur)
		if up.IsInt64() {
			shown = FormatMoney(up.Int64(), cur)
		}
		return true, cause(ReasonBalanceLimit, append(args, "total", shown)...)
	}
}

// Currency is the first of the currencies the library accepts
// (Options.Currencies; USD by default): the currency of a fee whose
// charge names none, as Alma's users API sends them.
func (s *Service) Currency() string { return s.currencies.codes[0] }
