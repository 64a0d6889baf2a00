package workflow

import (
	"fmt"
	"strings"
	"testing"
)

// TestApply covers every state × event pair of the machine, with and without
// a motivation and with notifications disabled.
func TestApply(t *testing.T) {
	t.Parallel()
	type want struct {
		to          State
		code        string // error code, "" for success
		mail        string
		follow      bool
		attestation bool
	}
	// What each event does from each state, with a motivation given.
	table := map[State]map[Event]want{
		EnConstruction: {
			PasserEnInstruction:    {to: EnInstruction, mail: MailEnInstruction, follow: true},
			RepasserEnConstruction: {code: EInvalidTransition},
			Accepter:               {code: EInvalidTransition},
			Refuser:                {code: EInvalidTransition},
			ClasserSansSuite:       {code: EInvalidTransition},
		},
		EnInstruction: {
			PasserEnInstruction:    {code: EInvalidTransition},
			RepasserEnConstruction: {to: EnConstruction, mail: MailEnConstruction},
			Accepter:               {to: Accepte, mail: MailAccepte, attestation: true},
			Refuser:                {to: Refuse, mail: MailRefuse},
			ClasserSansSuite:       {to: SansSuite},
		},
	}
	for _, s := range []State{Accepte, Refuse, SansSuite} {
		table[s] = map[Event]want{}
		for _, e := range Events {
			table[s][e] = want{code: EInvalidTransition}
		}
	}
	if len(table) != len(States) {
		t.Fatalf("table covers %d states, want %d", len(table), len(States))
	}
	for _, from := range States {
		for _, ev := range Events {
			w, ok := table[from][ev]
			if !ok {
				t.Fatalf("no expectation for %s × %s", from, ev)
			}
			t.Run(fmt.Sprintf("%s/%s", from, ev), func(t *testing.T) {
				t.Parallel()
				out, err := Apply(from, Command{Event: ev, Instructeur: "a@b.fr", Motivation: "  Pièces conformes.  ", ActorIsInstructeur: true})
				if w.code != "" {
					if got := ErrorCode(err); got != w.code {
						t.Fatalf("Apply = %v, want code %s", err, w.code)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if out.From != from || out.To != w.to || out.Mail != w.mail || out.Follow != w.follow || out.Attestation != w.attestation {
					t.Fatalf("Apply = %+v, want %+v", out, w)
				}
				if out.Decision != w.to.Decided() {
					t.Fatalf("Decision = %v for %s", out.Decision, w.to)
				}
				if out.Motivation != "Pièces conformes." {
					t.Fatalf("motivation not trimmed: %q", out.Motivation)
				}
				// disable_notification removes the applicant's e-mail and nothing else.
				quiet, err := Apply(from, Command{Event: ev, Instructeur: "a@b.fr", Motivation: "x", ActorIsInstructeur: true, DisableNotification: true})
				if err != nil || quiet.Mail != "" || quiet.To != w.to || quiet.Attestation != w.attestation {
					t.Fatalf("with disable_notification: %+v, %v", quiet, err)
				}
			})
		}
	}
}

func TestApplyRules(t *testing.T) {
	t.Parallel()
	ok := Command{Instructeur: "a@b.fr", ActorIsInstructeur: true}
	with := func(c Command, f func(*Command)) Command { f(&c); return c }
	tests := []struct {
		name string
		from State
		cmd  Command
		code string
	}{
		{"ErrMotivationRequired/refuser", EnInstruction, with(ok, func(c *Command) { c.Event = Refuser }), EMotivationRequired},
		{"ErrMotivationRequired/blank", EnInstruction, with(ok, func(c *Command) { c.Event = ClasserSansSuite; c.Motivation = " \n\t" }), EMotivationRequired},
		{"OK/accepterWithoutMotivation", EnInstruction, with(ok, func(c *Command) { c.Event = Accepter }), ""},
		{"ErrNotInstructeur", EnInstruction, with(ok, func(c *Command) { c.Event = Accepter; c.ActorIsInstructeur = false }), ENotInstructeur},
		{"ErrUnknownEvent", EnInstruction, with(ok, func(c *Command) { c.Event = "supprimer" }), EUnknownEvent},
		{"ErrInstructeurRequired", EnInstruction, with(ok, func(c *Command) { c.Event = Accepter; c.Instructeur = "" }), EInstructeurRequired},
		{"ErrMotivationTooLong", EnInstruction, with(ok, func(c *Command) { c.Event = Refuser; c.Motivation = strings.Repeat("é", MaxMotivationLen+1) }), EInvalid},
		{"ErrMotivationControl", EnInstruction, with(ok, func(c *Command) { c.Event = Refuser; c.Motivation = "a\x00b" }), EInvalid},
		// A decided dossier refuses everything, even with a missing motivation.
		{"ErrDecidedFirst", Refuse, with(ok, func(c *Command) { c.Event = Refuser }), EInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Apply(tt.from, tt.cmd)
			if got := ErrorCode(err); got != tt.code {
				t.Fatalf("Apply = %v, want code %q", err, tt.code)
			}
		})
	}
}
