package workflow

import (
	"fmt"
	"time"
	_ "time/tzdata" // Paris must load in every program using the domain (tests, bench), whatever the host has.

	"github.com/jackc/pgx/v5/pgtype"
)

// Date is a calendar date: a day of the civil calendar, with no time and no
// zone. A birth date, a residence permit's expiry and the first and last
// days of the authorised job are dates, not instants: stored as an instant
// (a UTC midnight) and printed in Paris, or compared with an instant, they
// move by a day in one zone or another. A Date cannot: it is the three
// numbers the applicant typed.
//
// Its text form, in JSON and elsewhere, is YYYY-MM-DD. It scans from and
// writes to a PostgreSQL date column with pgx. The zero Date stands for no
// date: it is "" in JSON and NULL in PostgreSQL.
type Date struct {
	Year  int        // 1 to 9999
	Month time.Month // January is 1
	Day   int        // 1 to the month's last day
}

// ParseDate parses a real date written YYYY-MM-DD: four digits, two, two,
// with dashes, for a day that exists (no 30 February, no 29 February in 2027).
// Nothing else is accepted: no sign, no spaces, no time, no other layout.
func ParseDate(s string) (Date, error) {
	bad := func() error { return fmt.Errorf("workflow: %q is not a real YYYY-MM-DD date", s) }
	if len(s) != len("2006-01-02") || s[4] != '-' || s[7] != '-' {
		return Date{}, bad()
	}
	num := func(digits string) int {
		n := 0
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	d := Date{Year: num(s[0:4]), Month: time.Month(num(s[5:7])), Day: num(s[8:10])}
	if !d.IsValid() {
		return Date{}, bad()
	}
	return d, nil
}

// DateOf returns the calendar date of the instant t in loc: the day a
// person there reads on their calendar. The zero time has no date: it gives
// the zero Date.
func DateOf(t time.Time, loc *time.Location) Date {
	if t.IsZero() {
		return Date{}
	}
	y, m, d := t.In(loc).Date()
	return Date{Year: y, Month: m, Day: d}
}

// IsZero reports whether d is the zero Date, which stands for no date.
func (d Date) IsZero() bool { return d == Date{} }

// IsValid reports whether d is a day of the calendar between the years 1
// and 9999.
func (d Date) IsValid() bool {
	return d.Year >= 1 && d.Year <= 9999 && d.Month >= time.January && d.Month <= time.December &&
		d.Day >= 1 && d.Day <= daysIn(d.Year, d.Month)
}

// String returns d as YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Compare returns -1 if d is before e, 0 if they are the same day, +1 if d
// is after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(d.Year, e.Year)
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	default:
		return cmpInt(d.Day, e.Day)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether d is a day before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is a day after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// AddDays returns the date n days after d (before it for a negative n).
func (d Date) AddDays(n int) Date {
	return dateOfUTC(d.utc().AddDate(0, 0, n))
}

// AddMonths returns the same day n months after d (before it for a negative
// n). A day the target month lacks becomes its last day: 31 January plus
// one month is 28 or 29 February, never 2 or 3 March. This is how French law
// counts a delay in months or years (code de procédure civile, art. 641: « à
// défaut d'un quantième identique, le délai expire le dernier jour du
// mois »), and the rule an age limit needs.
func (d Date) AddMonths(n int) Date {
	first := d.utc().AddDate(0, 0, 1-d.Day).AddDate(0, n, 0) // the 1st never overflows
	r := dateOfUTC(first)
	r.Day = min(d.Day, daysIn(r.Year, r.Month))
	return r
}

// AddYears returns the same day n years after d (before it for a negative n):
// someone born on d is n years old on d.AddYears(n). 29 February becomes
// 28 February in a common year, as in AddMonths.
func (d Date) AddYears(n int) Date { return d.AddMonths(12 * n) }

// utc is the first instant of d in UTC. UTC here is only a calendar to count
// days in, free of daylight-saving changes; the instant is never shown.
func (d Date) utc() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// dateOfUTC is the inverse of utc: the date of t in t's own location, UTC.
// (DateOf(t, time.UTC) would read 1 January of year 1, the zero time, as no
// date.)
func dateOfUTC(t time.Time) Date {
	y, m, day := t.Date()
	return Date{Year: y, Month: m, Day: day}
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// MarshalText writes d as YYYY-MM-DD (JSON writes it as a string), or
// nothing for the zero Date.
func (d Date) MarshalText() ([]byte, error) {
	if !d.IsZero() && !d.IsValid() {
		return nil, fmt.Errorf("workflow: marshal date %04d-%02d-%02d: not a real date", d.Year, int(d.Month), d.Day)
	}
	return []byte(d.String()), nil
}

// UnmarshalText reads a date written YYYY-MM-DD (see ParseDate); empty text
// is the zero Date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	p, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// ScanDate lets pgx scan a PostgreSQL date into d: NULL is the zero Date;
// infinity, which is no day, is an error.
func (d *Date) ScanDate(v pgtype.Date) error {
	switch {
	case !v.Valid:
		*d = Date{}
		return nil
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("workflow: scan date: %s is not a calendar date", v.InfinityModifier)
	}
	// pgx gives the day as a UTC midnight: read in UTC, never in another zone.
	*d = dateOfUTC(v.Time)
	return nil
}

// DateValue lets pgx write d to a PostgreSQL date: the zero Date is NULL.
func (d Date) DateValue() (pgtype.Date, error) {
	if d.IsZero() {
		return pgtype.Date{}, nil
	}
	if !d.IsValid() {
		return pgtype.Date{}, fmt.Errorf("workflow: write date %04d-%02d-%02d: not a real date", d.Year, int(d.Month), d.Day)
	}
	return pgtype.Date{Time: d.utc(), Valid: true}, nil
}

// TextValue lets pgx write d where it does not know the parameter is a
// date (the simple protocol, QueryExecModeExec) and sends text: the zero
// Date is NULL there too, not "".
func (d Date) TextValue() (pgtype.Text, error) {
	if d.IsZero() {
		return pgtype.Text{}, nil
	}
	b, err := d.MarshalText()
	if err != nil {
		return pgtype.Text{}, err
	}
	return pgtype.Text{String: string(b), Valid: true}, nil
}

// paris is the zone of the procedure: its « today », its cron schedules, the
// times on its documents. It is loaded once, when the program starts, from
// the host's zone database or the copy embedded with time/tzdata; a failure
// stops the program rather than fall back to UTC, which would move every
// date near midnight to the wrong day.
var paris = mustLoadLocation("Europe/Paris")

// Paris returns the Europe/Paris zone, in which the procedure's dates and
// times are read.
func Paris() *time.Location { return paris }

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("workflow: load time zone %s: %v", name, err))
	}
	return loc
}
