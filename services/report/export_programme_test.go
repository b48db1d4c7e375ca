package report

// NewProgrammeCollectorAt is newProgrammeCollector for tests, with a clock.
var NewProgrammeCollectorAt = newProgrammeCollector
