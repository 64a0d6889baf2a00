package jobs

import "github.com/prometheus/client_golang/prometheus"

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
