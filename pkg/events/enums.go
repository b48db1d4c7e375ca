package events

import "slices"

// Severity is how bad an incident was.
type Severity string

// Severities, worst first.
const (
	SeverityCritical      Severity = "critical"
	SeverityHigh          Severity = "high"
	SeverityMedium        Severity = "medium"
	SeverityLow           Severity = "low"
	SeverityInformational Severity = "informational"
)

// Valid reports whether s is one of the defined severities.
func (s Severity) Valid() bool {
	return slices.Contains([]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInformational}, s)
}

// Phase is the incident-handling phase a timeline entry belongs to (NIST SP 800-61).
type Phase string

// Phases, in the order they usually happen.
const (
	PhasePreparation   Phase = "preparation"
	PhaseDetection     Phase = "detection"
	PhaseAnalysis      Phase = "analysis"
	PhaseContainment   Phase = "containment"
	PhaseEradication   Phase = "eradication"
	PhaseRecovery      Phase = "recovery"
	PhasePostIncident  Phase = "post_incident"
	PhaseCommunication Phase = "communication"
)

// Valid reports whether p is one of the defined phases.
func (p Phase) Valid() bool {
	return slices.Contains([]Phase{PhasePreparation, PhaseDetection, PhaseAnalysis, PhaseContainment,
		PhaseEradication, PhaseRecovery, PhasePostIncident, PhaseCommunication}, p)
}

// Role is the part a person played in an incident.
type Role string

// Roles.
const (
	RoleCommander      Role = "commander"
	RoleResponder      Role = "responder"
	RoleReporter       Role = "reporter"
	RoleBusinessOwner  Role = "business_owner"
	RoleCommunications Role = "communications"
	RoleLegal          Role = "legal"
	RoleObserver       Role = "observer"
	RoleManagement     Role = "management"
	RoleExternal       Role = "external_partner"
	RoleOther          Role = "other"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return slices.Contains([]Role{RoleCommander, RoleResponder, RoleReporter, RoleBusinessOwner,
		RoleCommunications, RoleLegal, RoleObserver, RoleManagement, RoleExternal, RoleOther}, r)
}

// roleLabels are the roles as people read them.
var roleLabels = map[Role]string{
	RoleCommander: "Incident commander", RoleResponder: "Responder", RoleReporter: "Reporter",
	RoleBusinessOwner: "Business owner", RoleCommunications: "Communications", RoleLegal: "Legal",
	RoleObserver: "Observer", RoleManagement: "Management", RoleExternal: "External partner", RoleOther: "Other",
}

// Label is the role as a person reads it ("Business owner" for
// business_owner); an unknown role is shown as it is.
func (r Role) Label() string {
	if l, ok := roleLabels[r]; ok {
		return l
	}
	return string(r)
}

// Status is the state of an improvement action.
type Status string

// Action statuses; done and wont_do are final.
const (
	StatusOpen       Status = "open"
	StatusInProgress Status = "in_progress"
	StatusDone       Status = "done"
	StatusWontDo     Status = "wont_do"
)

// Valid reports whether s is one of the defined action statuses.
func (s Status) Valid() bool {
	return slices.Contains([]Status{StatusOpen, StatusInProgress, StatusDone, StatusWontDo}, s)
}

// ImpactLevel grades an impact assessment.
type ImpactLevel string

// Impact levels, from none to worst.
const (
	ImpactNone     ImpactLevel = "none"
	ImpactLow      ImpactLevel = "low"
	ImpactMedium   ImpactLevel = "medium"
	ImpactHigh     ImpactLevel = "high"
	ImpactCritical ImpactLevel = "critical"
)

// Valid reports whether l is one of the defined impact levels.
func (l ImpactLevel) Valid() bool {
	return slices.Contains([]ImpactLevel{ImpactNone, ImpactLow, ImpactMedium, ImpactHigh, ImpactCritical}, l)
}

// Audience is who was notified of an incident.
type Audience string

// Audiences.
const (
	AudienceManagement     Audience = "management"
	AudienceRegulator      Audience = "regulator"
	AudienceLawEnforcement Audience = "law_enforcement"
	AudienceCustomers      Audience = "customers"
	AudiencePartners       Audience = "partners"
	AudienceOther          Audience = "other"
)

// Valid reports whether a is one of the defined audiences.
func (a Audience) Valid() bool {
	return slices.Contains([]Audience{AudienceManagement, AudienceRegulator, AudienceLawEnforcement,
		AudienceCustomers, AudiencePartners, AudienceOther}, a)
}

// ReminderReason is why a review reminder was sent.
type ReminderReason string

// Reminder reasons.
const (
	ReminderDueSoon ReminderReason = "due_soon"
	ReminderOverdue ReminderReason = "overdue"
)

// Valid reports whether r is one of the defined reminder reasons.
func (r ReminderReason) Valid() bool {
	return r == ReminderDueSoon || r == ReminderOverdue
}

// QuestionKind says which Answer field carries the answer to a question.
type QuestionKind string

// Question kinds: text → Answer.Text, rating → Answer.Rating (1..5), yes_no → Answer.Yes,
// choice → Answer.Choice (one of Question.Choices), action_items → Answer.Items.
const (
	QuestionText        QuestionKind = "text"
	QuestionRating      QuestionKind = "rating"
	QuestionYesNo       QuestionKind = "yes_no"
	QuestionChoice      QuestionKind = "choice"
	QuestionActionItems QuestionKind = "action_items"
)

// Valid reports whether k is one of the defined question kinds.
func (k QuestionKind) Valid() bool {
	return slices.Contains([]QuestionKind{QuestionText, QuestionRating, QuestionYesNo, QuestionChoice, QuestionActionItems}, k)
}

// ActionCategory is the kind of improvement an action item makes.
type ActionCategory string

// Action categories.
const (
	CategoryPreventive    ActionCategory = "preventive"
	CategoryDetection     ActionCategory = "detection"
	CategoryTooling       ActionCategory = "tooling"
	CategoryTraining      ActionCategory = "training"
	CategoryPlaybook      ActionCategory = "playbook"
	CategoryPolicy        ActionCategory = "policy"
	CategoryProcess       ActionCategory = "process"
	CategoryCommunication ActionCategory = "communication"
)

// Valid reports whether c is one of the defined action categories.
func (c ActionCategory) Valid() bool {
	return slices.Contains([]ActionCategory{CategoryPreventive, CategoryDetection, CategoryTooling, CategoryTraining,
		CategoryPlaybook, CategoryPolicy, CategoryProcess, CategoryCommunication}, c)
}

// Priority is how urgent an improvement action is.
type Priority string

// Priorities, most urgent first.
const (
	PriorityCritical Priority = "critical"
	PriorityHigh     Priority = "high"
	PriorityMedium   Priority = "medium"
	PriorityLow      Priority = "low"
)

// Valid reports whether p is one of the defined priorities.
func (p Priority) Valid() bool {
	return slices.Contains([]Priority{PriorityCritical, PriorityHigh, PriorityMedium, PriorityLow}, p)
}
