package jobs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aptflow/aptflow/workflow"
)

// Metrics counts what the workers do. A nil *Metrics counts nothing.
type Metrics struct {
	emails   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
}

// Outcomes of a webhook delivery attempt, the label of
// aptflow_webhook_deliveries_total.
const (
	webhookDelivered = "delivered" // the receiver answered 2xx
	webhookRetry     = "retry"     // no answer or another status: tried again later
	webhookFailed    = "failed"    // the last attempt failed: given up
	webhookDisabled  = "disabled"  // 410 Gone: the subscription is disabled
)

// NewMetrics registers the workers' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aptflow_emails_total",
			Help: "E-mails by kind and outcome: sent (accepted by the SMTP server) or failed (given up).",
		}, []string{"kind", "status"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aptflow_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered (2xx), retry (failed, tried again later), failed (last attempt failed), disabled (410 Gone).",
		}, []string{"outcome"}),
	}
	// Every series exists from the start, at 0, so that a rate over the
	// first e-mail of a kind, or an alert on failed webhooks, sees it.
	for _, kind := range workflow.MailKinds() {
		m.emails.WithLabelValues(kind, "sent")
		m.emails.WithLabelValues(kind, "failed")
	}
	for _, o := range []string{webhookDelivered, webhookRetry, webhookFailed, webhookDisabled} {
		m.webhooks.WithLabelValues(o)
	}
	reg.MustRegister(m.emails, m.webhooks)
	return m
}

func (m *Metrics) webhook(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome).Inc()
	}
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
