package workflow

import "slices"

// The kinds of e-mail aptflow sends. Each names its templates (templates/
// refuses to start without a template for every kind, or with a template of
// no kind) and is stored with each row of the delivery log: never rename
// one.
const (
	MailEnInstruction    = "en_instruction"    // to the applicant: the dossier will be examined (passer_en_instruction)
	MailEnConstruction   = "en_construction"   // to the applicant: the dossier can be edited again (repasser_en_construction)
	MailAccepte          = "accepte"           // to the applicant: accepted, attestation attached (accepter)
	MailRefuse           = "refuse"            // to the applicant: refused, with motivation (refuser)
	MailMessageUsager    = "message_usager"    // to the applicant: a message from an instructeur
	MailNotification     = "notification"      // to a follower: a burst of activity on one dossier
	MailDigest           = "digest"            // to an instructeur: the daily digest
	MailStaleInstructeur = "stale_instructeur" // to an instructeur: dossiers en construction without activity
	MailStaleUsager      = "stale_usager"      // to the applicant: reminder that the dossier is still en construction
	MailExpirationUsager = "expiration_usager" // to the applicant: the dossier will be deleted at the end of its conservation (RGPD)
)

// mailKinds lists every e-mail kind, in the order of the procedure.
var mailKinds = []string{
	MailEnInstruction, MailEnConstruction, MailAccepte, MailRefuse, MailMessageUsager,
	MailNotification, MailDigest, MailStaleInstructeur, MailStaleUsager, MailExpirationUsager,
}

// MailKinds returns every e-mail kind, in the order of the procedure: the
// one list that the templates, the jobs and the metrics go by.
func MailKinds() []string { return slices.Clone(mailKinds) }

// mailToInstructeur lists the kinds sent to instructeurs; every other kind
// goes to the applicant.
var mailToInstructeur = []string{MailNotification, MailDigest, MailStaleInstructeur}

// MailToInstructeur reports whether e-mails of kind go to an instructeur,
// who follows dossiers in the back office (liens.instructeur), rather than
// to the applicant (liens.usager, the procedure's reply_to).
func MailToInstructeur(kind string) bool { return slices.Contains(mailToInstructeur, kind) }

// The kinds of activity on a dossier: what its followers hear about. The
// database accepts these and no other (activities_kind_check).
const (
	ActivityMessageUsager      = "message_usager"      // a message from the applicant
	ActivityMessageInstructeur = "message_instructeur" // a message from an instructeur
	ActivityAvis               = "avis"                // an expert's opinion
	ActivityModification       = "modification"        // the applicant changed the demandeur
)

// activityKinds lists every activity kind.
var activityKinds = []string{ActivityMessageUsager, ActivityMessageInstructeur, ActivityAvis, ActivityModification}

// ActivityKinds returns every activity kind.
func ActivityKinds() []string { return slices.Clone(activityKinds) }
