package workflow

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// State is the status of a dossier, with démarches-simplifiées' names.
type State string

// The five states of a dossier.
const (
	EnConstruction State = "en_construction"
	EnInstruction  State = "en_instruction"
	Accepte        State = "accepte"
	Refuse         State = "refuse"
	SansSuite      State = "sans_suite"
)

// States lists every state, in the order of the procedure.
var States = []State{EnConstruction, EnInstruction, Accepte, Refuse, SansSuite}

// Decided reports whether s is a decision: final, irrevocable.
func (s State) Decided() bool {
	return s == Accepte || s == Refuse || s == SansSuite
}

// Event is what an instructeur does to a dossier.
type Event string

// The five events of the instructor guide.
const (
	PasserEnInstruction    Event = "passer_en_instruction"
	RepasserEnConstruction Event = "repasser_en_construction"
	Accepter               Event = "accepter"
	Refuser                Event = "refuser"
	ClasserSansSuite       Event = "classer_sans_suite"
)

// Events lists every event.
var Events = []Event{PasserEnInstruction, RepasserEnConstruction, Accepter, Refuser, ClasserSansSuite}

// MaxMotivationLen bounds a motivation, in characters.
const MaxMotivationLen = 5000

// rule is one row of the state machine.
type rule struct {
	from, to           State
	motivationRequired bool
	mail               string // e-mail to the applicant, "" for none
	follow             bool   // the acting instructeur starts following
	attestation        bool   // render the APT attestation
}

// rules is the state machine of DESIGN.md, one entry per event.
var rules = map[Event]rule{
	PasserEnInstruction:    {from: EnConstruction, to: EnInstruction, mail: MailEnInstruction, follow: true},
	RepasserEnConstruction: {from: EnInstruction, to: EnConstruction, mail: MailEnConstruction},
	Accepter:               {from: EnInstruction, to: Accepte, mail: MailAccepte, attestation: true},
	Refuser:                {from: EnInstruction, to: Refuse, mail: MailRefuse, motivationRequired: true},
	// No e-mail to the applicant when a dossier is closed without follow-up.
	ClasserSansSuite: {from: EnInstruction, to: SansSuite, motivationRequired: true},
}

// Command is an event as an instructeur asks for it.
type Command struct {
	Event       Event
	Instructeur string // e-mail of the acting instructeur
	Motivation  string
	// DisableNotification suppresses the e-mail to the applicant.
	DisableNotification bool
	// ActorIsInstructeur says whether Instructeur belongs to the dossier's
	// procedure. The caller looks it up; the machine only applies the rule.
	ActorIsInstructeur bool
}

// Outcome is what a valid transition does.
type Outcome struct {
	From, To   State
	Motivation string // trimmed; "" for none
	// Mail is the template kind of the e-mail to the applicant, "" for none.
	Mail string
	// Follow: the acting instructeur now follows the dossier.
	Follow bool
	// Attestation: render the APT attestation (the acceptance e-mail, if any,
	// goes out once it is rendered, with the PDF attached).
	Attestation bool
	// Decision: the dossier reaches a final state; decided_at is set.
	Decision bool
}

// Apply runs cmd against a dossier in state from. It returns the outcome, or
// an *Error: EUnknownEvent, EInstructeurRequired or EInvalid for bad input,
// ENotInstructeur, EInvalidTransition (including any event on a decided
// dossier), EMotivationRequired.
//
// Apply is pure: no database, clock or queue.
func Apply(from State, cmd Command) (Outcome, error) {
	r, ok := rules[cmd.Event]
	if !ok {
		return Outcome{}, &Error{Code: EUnknownEvent, Message: "événement inconnu",
			Fields: []FieldError{{Field: "event", Code: "unknown_event", Detail: "événement inconnu : attendu passer_en_instruction, repasser_en_construction, accepter, refuser ou classer_sans_suite"}}}
	}
	if strings.TrimSpace(cmd.Instructeur) == "" {
		return Outcome{}, &Error{Code: EInstructeurRequired, Message: "l'instructeur est obligatoire",
			Fields: []FieldError{{Field: "instructeur", Code: "required", Detail: "l'e-mail de l'instructeur est obligatoire"}}}
	}
	motivation := strings.TrimSpace(cmd.Motivation)
	if fe := checkMotivation(motivation); fe != nil {
		return Outcome{}, invalid([]FieldError{*fe})
	}
	if !cmd.ActorIsInstructeur {
		return Outcome{}, Errorf(ENotInstructeur, "cet instructeur n'instruit pas la procédure de ce dossier")
	}
	if from != r.from {
		if from.Decided() {
			return Outcome{}, Errorf(EInvalidTransition, "le dossier est %s : une décision est définitive", from)
		}
		return Outcome{}, Errorf(EInvalidTransition, "%s est impossible depuis l'état %s", cmd.Event, from)
	}
	if r.motivationRequired && motivation == "" {
		return Outcome{}, &Error{Code: EMotivationRequired, Message: "une motivation est obligatoire pour " + string(cmd.Event),
			Fields: []FieldError{{Field: "motivation", Code: "required", Detail: "la motivation est obligatoire"}}}
	}
	out := Outcome{
		From:        from,
		To:          r.to,
		Motivation:  motivation,
		Follow:      r.follow,
		Attestation: r.attestation,
		Decision:    r.to.Decided(),
	}
	if !cmd.DisableNotification {
		out.Mail = r.mail
	}
	return out, nil
}

// checkMotivation bounds a motivation and refuses control characters other
// than line breaks and tabs, and the characters that spoof text.
func checkMotivation(m string) *FieldError {
	if !utf8.ValidString(m) {
		return &FieldError{Field: "motivation", Code: "invalid_utf8", Detail: "la motivation n'est pas de l'UTF-8 valide"}
	}
	if utf8.RuneCountInString(m) > MaxMotivationLen {
		return &FieldError{Field: "motivation", Code: "too_long", Detail: "la motivation dépasse 5000 caractères"}
	}
	for _, r := range m {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return &FieldError{Field: "motivation", Code: "control_character", Detail: "la motivation contient un caractère de contrôle"}
		}
		if spoofing(r) {
			fe := spoofingField("motivation")
			return &fe
		}
	}
	return nil
}
