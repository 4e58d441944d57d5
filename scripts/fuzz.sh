#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, each for SECONDS (default 30).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (targets default to all of them)
#
# The committed seed corpus (fuzz/corpus/<target>) is never written to: a smoke run
# (FUZZ_KEEP_CORPUS unset) fuzzes a throwaway copy, so CI leaves the tree clean; a long
# run (FUZZ_KEEP_CORPUS=1) keeps what it learns in fuzz/target/corpus/<target>, which is
# git-ignored, and starts from it next time. A crash, panic, failed property or timeout
# fails the run and leaves the input in fuzz/artifacts/<target>/ with the command that
# replays it. Needs the nightly toolchain; installs cargo-fuzz when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=(ws_frame http_body token)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# FUZZ_BUILD=release (the default, for long runs) builds optimised with AddressSanitizer;
# FUZZ_BUILD=dev (the smoke run in `make test`) builds unoptimised without a sanitizer:
# a cold release build took 25 CPU-minutes, a dev one a fraction of that, and the
# targets' own code is safe Rust, so the sanitizer finds little the assertions miss.
case ${FUZZ_BUILD:-release} in
    release) build_flags=(--release); profile=release ;;
    dev) build_flags=(--dev --sanitizer none); profile=debug ;;
    *) echo "FUZZ_BUILD must be release or dev" >&2; exit 2 ;;
esac

# The fuzz workspace builds into its own fuzz/target: nightly, instrumented artefacts
# have no business in a shared stable target directory.
unset CARGO_TARGET_DIR
build_started=$(date +%s)
cargo +nightly fuzz build "${build_flags[@]}"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
echo "fuzz build: $(( $(date +%s) - build_started )) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=()
for target in "${targets[@]}"; do
    if [[ -n "${FUZZ_KEEP_CORPUS:-}" ]]; then
        corpus=fuzz/target/corpus/$target
    else
        corpus=$scratch/$target
    fi
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    cp -r fuzz/corpus/"$target"/. "$corpus"/
    log=$scratch/$target.log
    echo "== $target: ${seconds} s on $(ls "$corpus" | wc -l) inputs"
    # The binary itself rather than `cargo fuzz run`, which would check the build again.
    if ! "fuzz/target/$host/$profile/$target" "$corpus" \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" 2>"$log"; then
        tail -n 60 "$log"
        echo "FAIL: $target found a failing input; see fuzz/artifacts/$target/" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    summary+=("$target: $execs executions, $rate/s, corpus $(ls "$corpus" | wc -l) inputs")
done
printf '%s\n' "${summary[@]}"
