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
# fuzz_one runs one target. Go 1.26's coordinator can fail a duration-bound run at the deadline
# with "context deadline exceeded" and no failing input (go.dev/issue/75804, fixed in Go 1.27):
# such a run is repeated, up to twice; a run that writes a failing input fails at once.
fuzz_one() {
	local pkg=$1 name=$2 out attempt
	for attempt in 1 2 3; do
		# -parallel 1: one fuzzing worker, so the run stays light beside other tests.
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg" 2>&1); then
			printf '%s\n' "$out"
			return 0
		fi
		printf '%s\n' "$out"
		if grep -q 'Failing input written to' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
			return 1
		fi
		echo "fuzz: $name stopped at its deadline with no failing input (go.dev/issue/75804); run $((attempt + 1)) of 3" >&2
	done
	return 1
}

# Every target runs even after one fails, so one run saves every failing input.
failed=()
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	echo "fuzz: $name in $pkg for $FUZZTIME"
	fuzz_one "$pkg" "$name" || failed+=("$name in $pkg")
done
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
