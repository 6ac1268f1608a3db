// Package repocheck holds tests that keep the repository's own rules: today, that the Go
// documentation stands alone and cites no document outside the repository.
package repocheck
