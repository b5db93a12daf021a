#!/usr/bin/env bash
# Times AdjointJSON beside orjson on the JSON work of the S2/S3 scenarios, single-threaded, in one run.
#
#   scripts/bench_json.sh
#
# Copies ../shared/anchors/service/bench into scratch/anchors/service/bench (the anchors write beside themselves)
# when it is missing, makes a venv there with numpy and orjson, generates the S1/S2/S3 bodies into
# scratch/anchors/service/out/bodies with gen_bodies.py, runs scripts/bench_json.py (orjson; it also writes the
# derived bodies s3_grad.json and s3_b64.json), builds the tests in release mode (scratch path .build-json) and
# runs JSONBenchmarkTests with ADJOINT_JSON_BENCH=1, then prints a table of medians and Adjoint/orjson ratios.
# Each timing step holds ${LOCK:-/tmp/anchors.lock} so benchmark jobs on this machine do not overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

dir="$root/scratch/anchors/service"
bodies="$dir/out/bodies"
out="$dir/out/json"
mkdir -p "$bodies" "$out"
lock="${LOCK:-/tmp/anchors.lock}"
locked() { flock "$lock" "$@"; }
log() { echo "== bench_json: $*" >&2; }

if [ ! -f "$dir/bench/gen_bodies.py" ]; then
  log "copying the service anchors"
  cp -r "$root/../shared/anchors/service/bench" "$dir/"
  chmod -R u+w "$dir/bench"
fi
python="$dir/.venv/bin/python"
if ! "$python" -c "import numpy, orjson" 2>/dev/null; then
  log "making the venv (numpy, orjson)"
  python3 -m venv "$dir/.venv"
  "$dir/.venv/bin/pip" install -q numpy orjson
fi

log "generating the bodies"
"$python" "$dir/bench/gen_bodies.py" "$bodies" >"$out/gen_bodies.log"

# The whole package's tests, in release mode; when the build fails (others edit the other modules meanwhile), a
# package of AdjointJSON (with CBase64) and its tests alone (scratch/json-pkg, symlinks to the repo's folders) instead.
build_isolated() {
  mkdir -p "$root/scratch/json-pkg/Sources" "$root/scratch/json-pkg/Tests"
  ln -sfn ../../../Sources/AdjointJSON "$root/scratch/json-pkg/Sources/AdjointJSON"
  ln -sfn ../../../Sources/CBase64 "$root/scratch/json-pkg/Sources/CBase64"
  ln -sfn ../../../Tests/AdjointJSONTests "$root/scratch/json-pkg/Tests/AdjointJSONTests"
  cat >"$root/scratch/json-pkg/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
// AdjointJSON and its tests alone (symlinks to the repo's folders); made by scripts/bench_json.sh.
import PackageDescription

let package = Package(
  name: "AdjointJSONOnly",
  targets: [
    .target(name: "AdjointJSON", dependencies: ["CBase64"]),
    .target(name: "CBase64"),
    .testTarget(name: "AdjointJSONTests", dependencies: ["AdjointJSON"]),
  ],
  swiftLanguageModes: [.v6]
)
SWIFT
  (cd "$root/scratch/json-pkg" && swift build -c release --build-tests --scratch-path "$root/.build-json-only") \
    >"$out/build-isolated.log" 2>&1 || {
    tail -30 "$out/build-isolated.log" >&2
    exit 1
  }
  xctest="$root/.build-json-only/release/AdjointJSONOnlyPackageTests.xctest"
}
log "building the tests (release)"
xctest=""
if [ "${ADJOINT_JSON_ISOLATED:-0}" = 1 ]; then
  build_isolated
else
  for attempt in 1 2 3; do
    if swift build -c release --build-tests --scratch-path .build-json >"$out/build.log" 2>&1; then
      xctest="$root/.build-json/release/AdjointPackageTests.xctest"
      break
    fi
    grep -q 'was modified during the build' "$out/build.log" || break
    sleep 5
  done
  if [ -z "$xctest" ]; then
    log "the package does not build now (see $out/build.log); building AdjointJSON alone"
    build_isolated
  fi
fi

log "orjson"
locked "$python" "$root/scripts/bench_json.py" "$bodies" >"$out/orjson.tsv"

log "AdjointJSON"
ADJOINT_JSON_BENCH=1 ADJOINT_JSON_BODIES="$bodies" locked "$xctest" AdjointJSONTests.JSONBenchmarkTests \
  >"$out/adjoint.log" 2>&1 || {
  cat "$out/adjoint.log" >&2
  exit 1
}
grep '^BENCH' "$out/adjoint.log" | cut -f2,3 >"$out/adjoint.tsv"

"$python" - "$out/adjoint.tsv" "$out/orjson.tsv" <<'EOF'
import sys

def load(path):
    return {line.split("\t")[0]: float(line.split("\t")[1]) for line in open(path) if line.strip()}

adjoint, orjson = load(sys.argv[1]), load(sys.argv[2])
labels = {
    "s3_decode_nested": "S3 request decode, nested (orjson.loads + numpy.asarray)",
    "s3_encode_nested": "S3 gradient encode, nested (orjson.dumps numpy)",
    "s2_decode": "S2 request decode to a value (orjson.loads)",
    "s2_encode": "S2 response encode (orjson.dumps)",
    "s3_decode_base64": "S3 request decode, base64 (loads + b64decode + frombuffer)",
    "s3_encode_base64": "S3 gradient encode, base64 (b64encode + dumps)",
}

def fmt(s):
    return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"

print("| operation | Adjoint median | orjson median | Adjoint/orjson |")
print("|---|---:|---:|---:|")
for key, label in labels.items():
    a, o = adjoint.get(key), orjson.get(key)
    ratio = f"{a / o:.2f}" if a and o else "–"
    print(f"| {label} | {fmt(a) if a else '–'} | {fmt(o) if o else '–'} | {ratio} |")
for kind in ("decode", "encode"):
    n, b = adjoint.get(f"s3_{kind}_nested"), adjoint.get(f"s3_{kind}_base64")
    if n and b:
        print(f"\nAdjoint S3 {kind}: base64 is {n / b:.1f}x faster than nested", end="")
print()
EOF
