// Package repocheck holds tests that keep the repository's own rules: that the Go source,
// tests included, stands alone and cites no document outside the repository, and that
// README's composition snippet is code that compiles.
package repocheck
