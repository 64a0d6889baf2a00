package jobs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aptflow/aptflow/workflow"
)

// Metrics counts what the workers do. A nil *Metrics counts nothing.
type Metrics struct {
	emails *prometheus.CounterVec
}

// NewMetrics registers the workers' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aptflow_emails_total",
			Help: "E-mails by kind and outcome: sent (accepted by the SMTP server) or failed (given up).",
		}, []string{"kind", "status"}),
	}
	// Every series exists from the start, at 0, so that a rate over the
	// first e-mail of a kind sees it.
	for _, kind := range workflow.MailKinds() {
		m.emails.WithLabelValues(kind, "sent")
		m.emails.WithLabelValues(kind, "failed")
	}
	reg.MustRegister(m.emails)
	return m
}

func (m *Metrics) emailSent(kind string) {
	if m != nil {
		m.emails.WithLabelValues(kind, "sent").Inc()
	}
}

func (m *Metrics) emailFailed(kind string) {
	if m != nil {
		m.emails.WithLabelValues(kind, "failed").Inc()
	}
}
