package workflow_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/zonetest"
	"github.com/aptflow/aptflow/workflow"
)

// date is a shorthand for the tables below.
func date(y int, m time.Month, d int) workflow.Date {
	return workflow.Date{Year: y, Month: m, Day: d}
}

// someDates are the days where a date kept as an instant goes wrong: both
// ends of Paris's daylight-saving changes, ends of months and years, leap
// days, and the ends of the range; then random days, the same on every run.
func someDates() []workflow.Date {
	ds := []workflow.Date{
		date(2026, time.March, 28), date(2026, time.March, 29), date(2026, time.March, 30),
		date(2026, time.October, 24), date(2026, time.October, 25), date(2026, time.October, 26),
		date(2025, time.December, 31), date(2026, time.January, 1), date(2026, time.November, 30),
		date(2024, time.February, 29), date(2000, time.February, 29), date(1900, time.February, 28),
		date(1, time.January, 1), date(9999, time.December, 31),
	}
	r := rand.New(rand.NewPCG(12, 2026))
	for len(ds) < 500 {
		d := date(1+r.IntN(9999), time.Month(1+r.IntN(12)), 1+r.IntN(31))
		if d.IsValid() {
			ds = append(ds, d)
		}
	}
	return ds
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]workflow.Date{
		"2026-11-30": date(2026, time.November, 30),
		"2024-02-29": date(2024, time.February, 29),
		"0001-01-01": date(1, time.January, 1),
		"9999-12-31": date(9999, time.December, 31),
	} {
		got, err := workflow.ParseDate(s)
		if err != nil || got != want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{
		"", "2027-02-29", "1900-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00", "0000-01-01",
		"2026-1-01", "2026-01-1", "+026-01-01", "-026-01-01", "2026-01-01T00:00:00Z", " 2026-01-01", "2026-01-01 ",
		"2026/01/01", "01/12/2026", "2026-01-0a", "2026-+1-01", "２０２６-01-01", "20260101",
	} {
		if d, err := workflow.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", s, d)
		}
	}
}

// TestDateJSON: a Date is a "YYYY-MM-DD" string in JSON, both ways; the
// zero Date is "".
func TestDateJSON(t *testing.T) {
	t.Parallel()
	for _, d := range someDates() {
		b, err := json.Marshal(d)
		if err != nil || string(b) != `"`+d.String()+`"` {
			t.Fatalf("Marshal(%v) = %s, %v", d, b, err)
		}
		var back workflow.Date
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Fatalf("Unmarshal(%s) = %v, %v; want %v", b, back, err, d)
		}
	}
	t.Run("Zero", func(t *testing.T) {
		if b, err := json.Marshal(workflow.Date{}); err != nil || string(b) != `""` {
			t.Fatalf("Marshal(zero) = %s, %v", b, err)
		}
		d := date(2026, time.May, 1)
		if err := json.Unmarshal([]byte(`""`), &d); err != nil || !d.IsZero() {
			t.Fatalf(`Unmarshal("") = %v, %v`, d, err)
		}
	})
	t.Run("ErrNotReal", func(t *testing.T) {
		if b, err := json.Marshal(date(2027, time.February, 29)); err == nil {
			t.Fatalf("Marshal(2027-02-29) = %s", b)
		}
		var d workflow.Date
		if err := json.Unmarshal([]byte(`"2027-02-29"`), &d); err == nil {
			t.Fatalf("Unmarshal(2027-02-29) = %v", d)
		}
	})
	t.Run("ErrType", func(t *testing.T) {
		var v struct {
			D workflow.Date `json:"d"`
		}
		var te *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(`{"d": 20260101}`), &v); !errors.As(err, &te) || te.Field != "d" {
			t.Fatalf("Unmarshal(number) = %v", err)
		}
	})
}

// TestDatePostgres: a Date is written to and read from a PostgreSQL date,
// in binary and in text, whatever the session's time zone; the day
// PostgreSQL holds is the day given (its text form says so), and the zero
// Date is NULL.
func TestDatePostgres(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := t.Context()
	dates := someDates()
	for _, zone := range append([]string{"Europe/Paris"}, zonetest.Extremes...) {
		for mode, exec := range map[string]pgx.QueryExecMode{
			"Binary": pgx.QueryExecModeCacheStatement, "Exec": pgx.QueryExecModeExec, "Text": pgx.QueryExecModeSimpleProtocol,
		} {
			t.Run(zone+"/"+mode, func(t *testing.T) {
				cfg := pool.Config().ConnConfig.Copy()
				cfg.RuntimeParams["timezone"] = zone
				cfg.DefaultQueryExecMode = exec
				conn, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				for _, d := range dates {
					var back workflow.Date
					var text string
					if err := conn.QueryRow(ctx, `SELECT $1::date, to_char($1::date, 'YYYY-MM-DD')`, d).Scan(&back, &text); err != nil {
						t.Fatalf("%v: %v", d, err)
					}
					if back != d || text != d.String() {
						t.Fatalf("%v came back as %v, stored as %s", d, back, text)
					}
				}
				var isNull bool
				back := date(2026, time.May, 1)
				if err := conn.QueryRow(ctx, `SELECT $1::date IS NULL, $1::date`, workflow.Date{}).Scan(&isNull, &back); err != nil || !isNull || !back.IsZero() {
					t.Fatalf("zero Date: NULL %v, back %v, %v", isNull, back, err)
				}
				if err := conn.QueryRow(ctx, `SELECT 'infinity'::date`).Scan(&back); err == nil {
					t.Fatalf("infinity scanned as %v", back)
				}
				if _, err := conn.Exec(ctx, `SELECT $1::date`, date(2027, time.February, 29)); err == nil {
					t.Fatal("2027-02-29 was written")
				}
			})
		}
	}
}

// TestDateOf: the date of an instant is the day on the calendar of the zone.
func TestDateOf(t *testing.T) {
	t.Parallel()
	kiritimati, err := time.LoadLocation("Pacific/Kiritimati")
	if err != nil {
		t.Fatal(err)
	}
	paris := workflow.Paris()
	for name, tc := range map[string]struct {
		at   time.Time
		loc  *time.Location
		want workflow.Date
	}{
		// 23:30 UTC on the 31st is already the next day in Paris.
		"NewYearParis":        {time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), paris, date(2027, time.January, 1)},
		"MonthEndSummerParis": {time.Date(2026, 7, 31, 23, 30, 0, 0, time.UTC), paris, date(2026, time.August, 1)},
		"MonthEndParis":       {time.Date(2026, 1, 31, 22, 59, 0, 0, time.UTC), paris, date(2026, time.January, 31)},
		// Summer time (UTC+2) began on 29 March: 22:30 UTC is past midnight.
		"AfterSpringForward": {time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC), paris, date(2026, time.April, 1)},
		"SpringForwardNight": {time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC), paris, date(2026, time.March, 29)},
		"FallBackNight":      {time.Date(2026, 10, 24, 22, 30, 0, 0, time.UTC), paris, date(2026, time.October, 25)},
		"AfterFallBack":      {time.Date(2026, 10, 25, 22, 59, 0, 0, time.UTC), paris, date(2026, time.October, 25)},
		"Kiritimati":         {time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC), kiritimati, date(2027, time.January, 1)},
		"UTC":                {time.Date(2026, 12, 31, 23, 30, 0, 0, paris), time.UTC, date(2026, time.December, 31)},
		"Zero":               {time.Time{}, paris, workflow.Date{}},
	} {
		if got := workflow.DateOf(tc.at, tc.loc); got != tc.want {
			t.Errorf("%s: DateOf(%v) = %v, want %v", name, tc.at, got, tc.want)
		}
	}
	if workflow.Paris().String() != "Europe/Paris" || workflow.Paris() != paris {
		t.Errorf("Paris() = %v", workflow.Paris())
	}
}

func TestDateArithmetic(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ got, want workflow.Date }{
		"AddDay":               {date(2026, time.March, 28).AddDays(1), date(2026, time.March, 29)},
		"AddDayOverDST":        {date(2026, time.March, 29).AddDays(1), date(2026, time.March, 30)},
		"AddDayToNewYear":      {date(2026, time.December, 31).AddDays(1), date(2027, time.January, 1)},
		"SubtractDay":          {date(2026, time.January, 1).AddDays(-1), date(2025, time.December, 31)},
		"AddYear":              {date(2026, time.November, 30).AddDays(365), date(2027, time.November, 30)},
		"AddMonth":             {date(2026, time.November, 30).AddMonths(1), date(2026, time.December, 30)},
		"AddMonthClamped":      {date(2026, time.January, 31).AddMonths(1), date(2026, time.February, 28)},
		"AddMonthsToLeap":      {date(2023, time.December, 31).AddMonths(2), date(2024, time.February, 29)},
		"SubtractMonthClamped": {date(2026, time.March, 31).AddMonths(-1), date(2026, time.February, 28)},
		"AddMonthsOverYears":   {date(2026, time.November, 30).AddMonths(18), date(2028, time.May, 30)},
		"AddYears":             {date(2003, time.April, 12).AddYears(16), date(2019, time.April, 12)},
		// Born on 29 February: 16 years old on 28 February in a common year.
		"AddYearsLeapDay":   {date(2008, time.February, 29).AddYears(16), date(2024, time.February, 29)},
		"AddYearsFromLeap":  {date(2008, time.February, 29).AddYears(17), date(2025, time.February, 28)},
		"SubtractYears":     {date(2026, time.November, 26).AddYears(-120), date(1906, time.November, 26)},
		"SubtractYearsLeap": {date(2024, time.February, 29).AddYears(-1), date(2023, time.February, 28)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", name, tc.got, tc.want)
		}
	}
	a, b := date(2026, time.November, 30), date(2026, time.December, 1)
	for _, c := range []struct {
		d, e    workflow.Date
		compare int
	}{
		{a, b, -1}, {b, a, 1}, {a, a, 0},
		{date(2025, time.December, 31), date(2026, time.January, 1), -1},
		{date(2026, time.February, 28), date(2026, time.March, 1), -1},
		{date(2026, time.March, 2), date(2026, time.March, 10), -1},
	} {
		if got := c.d.Compare(c.e); got != c.compare || c.d.Before(c.e) != (c.compare < 0) || c.d.After(c.e) != (c.compare > 0) {
			t.Errorf("%v.Compare(%v) = %d, Before %v, After %v; want %d", c.d, c.e, got, c.d.Before(c.e), c.d.After(c.e), c.compare)
		}
	}
}

// TestDatesInZones runs the tests of dates again on machines set to the
// zones at both ends of the clock: nothing may move by a day.
func TestDatesInZones(t *testing.T) {
	zonetest.Run(t, []string{
		"TestParseDate", "TestDateJSON", "TestDatePostgres", "TestDateOf", "TestDateArithmetic",
		"TestDemandeurValidate", "TestDemandeurJSON",
	}, zonetest.Extremes...)
}
