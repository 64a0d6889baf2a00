package templates

import "strconv"

// AttestationFilename is the file name of a dossier's attestation PDF, the
// same whether the acceptance e-mail attaches it or the API serves it: the
// applicant who has both sees one document.
func AttestationFilename(dossierID int64) string {
	return "attestation-APT-dossier-" + strconv.FormatInt(dossierID, 10) + ".pdf"
}
