// Package seedjob is the travelers seed job's shared part: the tables
// (traveler_batch_source, traveler_batch_results), the rows seeded into
// the source, the validate/transform step of a profile API answer (and
// the profile stored for a failed one), the final validation's counts
// and the profile API reachability check.
//
// The travelers example (examples/travelers), its River fleet
// (riverenrich/examples/fleet) and its OpenTelemetry variant
// (otelenrich/examples/travelers) import it, so that the three run the
// same job on the same tables. Each keeps its own flags and wiring; copy
// this package, or import it, when you start from one of them.
package seedjob
