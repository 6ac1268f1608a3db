#!/usr/bin/env bash
# Runs every native Go fuzz target for a short while (FUZZTIME, default 10s), one at a time:
# `go test -fuzz` takes one target of one package per run. Targets are found with
# `go test -list`, so a new FuzzXxx in any package is included without editing this file.
# A failure leaves the input under the package's testdata/fuzz/FuzzXxx/, to commit as a seed.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
PACKAGES=${*:-./...}

targets=()
names=()
while read -r line; do
	case $line in
	Fuzz*) names+=("$line") ;;
	"ok "*)
		pkg=$(awk '{print $2}' <<<"$line")
		for name in "${names[@]}"; do targets+=("$pkg $name"); done
		names=()
		;;
	*) names=() ;;
	esac
done < <(go test -list '^Fuzz' $PACKAGES)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets found in $PACKAGES" >&2
	exit 1
fi
# Every target runs even after one fails, so one run saves every failing input.
failed=()
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	echo "fuzz: $name in $pkg for $FUZZTIME"
	# -parallel 1: one fuzzing worker, so the run stays light beside other tests.
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg" || failed+=("$name in $pkg")
done
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
