package workflow_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aptflow/aptflow/workflow"
)

func ExampleDate() {
	debut, err := workflow.ParseDate("2026-12-01")
	if err != nil {
		panic(err)
	}
	fin := debut.AddMonths(6)
	b, _ := json.Marshal(map[string]workflow.Date{"date_debut": debut, "date_fin": fin})
	fmt.Println(string(b))

	// Today, for the procedure, is the day in Paris: at 23:30 UTC on
	// 30 November it is already 1 December.
	today := workflow.DateOf(time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), workflow.Paris())
	fmt.Println(today, !today.Before(debut))

	// Born on 29 February 2008: 16 years old on 29 February 2024, 17 on
	// 28 February 2025.
	birth := workflow.Date{Year: 2008, Month: time.February, Day: 29}
	fmt.Println(birth.AddYears(16), birth.AddYears(17))

	_, err = workflow.ParseDate("2027-02-29")
	fmt.Println(err)
	// Output:
	// {"date_debut":"2026-12-01","date_fin":"2027-06-01"}
	// 2026-12-01 true
	// 2024-02-29 2025-02-28
	// workflow: "2027-02-29" is not a real YYYY-MM-DD date
}
