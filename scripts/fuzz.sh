#!/usr/bin/env bash
# Fuzzes the input decoder with libFuzzer for a bounded time (default 60 s), starting from
# and adding to fuzz/corpus. Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; shift || true
swift build -c release --scratch-path .build-fuzz --product DecoderFuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
mkdir -p fuzz/corpus fuzz/findings
SWIFT_BACKTRACE=enable=no .build-fuzz/release/DecoderFuzz fuzz/corpus \
    -max_total_time="$seconds" -max_len=4096 -artifact_prefix=fuzz/findings/ -print_final_stats=1 "$@"
