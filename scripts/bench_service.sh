#!/usr/bin/env bash
# Load-tests Adjoint's HTTP server beside the service anchors of BENCHMARKS.md, with wrk on loopback, in one run.
#
#   scripts/bench_service.sh [SERVER...]
#
# SERVER is any of: nginx (the anchor's fixed reply, 1 worker), hb (the Hummingbird 2 anchor, hand-coded maths),
# http (http-bench-server: our HTTP server alone, answering the fixed S1 reply), adjoint (`adjoint serve`, the
# real service, 2 workers), https (http-bench-server over TLS, with a self-signed certificate made here).
# nginx-tls is nginx over TLS with the same certificate and fixed replies: the ceiling a TLS server reaches
# with this client. Default: nginx hb http https adjoint. http-old and https-old run the binary named by
# $OLD_BENCH_SERVER (an earlier http-bench-server kept for comparison) the same way. BENCH_SCRATCH is the build's
# scratch path (default .build-release). Each server is started alone, checked, then loaded by wrk with one
# thread, keep-alive, a 3 s warm-up and a ${DURATION:-10s} run for each scenario: `GET /healthz` and `POST /gradient`
# with the S1 body, at 16 and 64 connections; ROUNDS=N repeats the whole sequence N times (default 1) and the
# table gives the median of each figure. The server's CPU time (user + system, from /proc, all its processes)
# is divided by the number of requests wrk completed. The measurements hold ${LOCK:-/tmp/anchors.lock}.
#
# Needs wrk and nginx (Debian's wrk and nginx-light, installed when missing). The anchors are copied into
# scratch/anchors/service (they write beside themselves); the Hummingbird anchor is built there in release mode.
# Outputs in scratch/anchors/service/out/http: one wrk log per run, summary.tsv, table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
# shellcheck source=scripts/common.sh
. scripts/common.sh

servers=("$@")
[ ${#servers[@]} -eq 0 ] && servers=(nginx hb http https adjoint)
duration="${DURATION:-10s}"
rounds="${ROUNDS:-1}"
warm="${WARM:-3s}"
lock="${LOCK:-/tmp/anchors.lock}"
scratch="${BENCH_SCRATCH:-.build-release}"
dir="$root/scratch/anchors/service"
out="$dir/out/http"
bodies="$dir/out/bodies"
mkdir -p "$out"
summary="$out/summary.tsv"
: >"$summary"
log() { echo "== bench_service: $*" >&2; }

adjoint_install_debian_packages wrk nginx-light
if [ ! -f "$dir/run_all.sh" ]; then
  log "copying the service anchors"
  mkdir -p "$dir"
  cp -r "$root/../shared/anchors/service/." "$dir/"
  chmod -R u+w "$dir"
fi
if [ ! -f "$bodies/s1.json" ]; then
  mkdir -p "$bodies"
  # The S1 body, as the anchors' gen_bodies.py writes it.
  printf '%s' '{"expr": "sin(x*y) + x^2", "at": {"x": 1.5, "y": -0.5}}' >"$bodies/s1.json"
fi

for server in "${servers[@]}"; do
  case "$server" in
  hb)
    hb="$dir/out/hb-anchor"
    if [ ! -x "$hb/.build/release/HBAnchor" ]; then
      log "building the Hummingbird anchor (release)"
      mkdir -p "$hb"
      cp -r "$dir/hummingbird/Package.swift" "$dir/hummingbird/Sources" "$hb/"
      (cd "$hb" && flock "$lock" swift build -c release >"$out/hb-build.log" 2>&1)
    fi
    ;;
  http | https)
    if [ -z "${built_http:-}" ]; then
      log "building http-bench-server (release)"
      flock "$lock" swift build -c release --scratch-path "$scratch" --product http-bench-server >&2
      built_http=1
    fi
    ;;
  adjoint)
    log "building adjoint (release)"
    flock "$lock" swift build -c release --scratch-path .build-release --product adjoint >&2
    ;;
  http-old | https-old)
    if [ ! -x "${OLD_BENCH_SERVER:-}" ]; then
      echo "$server needs OLD_BENCH_SERVER, the path of an earlier http-bench-server" >&2
      exit 2
    fi
    ;;
  nginx | nginx-tls) ;;
  *)
    echo "unknown server $server (nginx, nginx-tls, hb, http, https, adjoint, http-old, https-old)" >&2
    exit 2
    ;;
  esac
done

descendants() {
  local p
  for p in $(pgrep -P "$1" || true); do
    echo "$p"
    descendants "$p"
  done
}
# The user + system clock ticks of a process and its descendants.
cpu_ticks() {
  local p sum=0 t
  for p in "$1" $(descendants "$1"); do
    t=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) || continue
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}
wait_health() {
  for _ in $(seq 1 200); do
    curl -fsSk "$scheme://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# run NAME PORT SCENARIO CONNECTIONS
run() {
  local name=$1 port=$2 scenario=$3 connections=$4 file="$out/$1.$3.c$4.r$round.txt" url
  local -a script=()
  if [ "$scenario" = healthz ]; then
    url="$scheme://127.0.0.1:$port/healthz"
  else
    url="$scheme://127.0.0.1:$port/gradient"
    script=(-s "$dir/bench/post.lua")
  fi
  local -a body=()
  [ "$scenario" = s1 ] && body=(-- "$bodies/s1.json")
  wrk -t1 -c"$connections" -d"$warm" --timeout 10s "${script[@]}" "$url" "${body[@]}" >/dev/null 2>&1
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t1 -c"$connections" -d"$duration" --timeout 10s --latency "${script[@]}" "$url" "${body[@]}" >"$file" 2>&1
  after=$(cpu_ticks "$pid")
  python3 - "$file" "$name" "$scenario" "$connections" "$before" "$after" "$(getconf CLK_TCK)" >>"$summary" <<'PY'
import re, sys
path, name, scenario, connections, before, after, hz = sys.argv[1:]
text = open(path).read()
def ms(value):
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
requests = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
cpu_us = (int(after) - int(before)) / int(hz) * 1e6 / max(requests, 1)
print("\t".join([name, scenario, connections, f"{rps:.0f}", f"{p50:.3f}", f"{p99:.3f}", f"{cpu_us:.1f}",
                 non2xx.group(1) if non2xx else "0", errors.group(1) if errors else ""]))
PY
  tail -n 1 "$summary" >&2
}

measure() {
  local name=$1 port=$2
  log "$name on port $port"
  if ! wait_health "$port"; then
    log "$name did not come up; see $out/$name.server.log"
    kill "$pid" 2>/dev/null || true
    return 0
  fi
  for scenario in healthz s1; do
    for connections in 16 64; do
      run "$name" "$port" "$scenario" "$connections"
    done
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A self-signed certificate for the TLS rows.
make_certificate() {
  if [ ! -f "$out/tls/key.pem" ]; then
    mkdir -p "$out/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$out/tls/key.pem" -out "$out/tls/cert.pem" >/dev/null 2>&1
  fi
}

# Hold the benchmark lock for the whole measurement, so no other benchmark job runs beside it.
exec 9>>"$lock"
flock 9
for round in $(seq 1 "$rounds"); do
  for server in "${servers[@]}"; do
    log "round $round of $rounds"
    scheme=http
    case "$server" in
    nginx)
      mkdir -p "$dir/out/nginx"
      nginx -p "$dir/out/nginx/" -c "$dir/nginx/nginx.conf" -g "worker_processes 1;" >"$out/nginx.server.log" 2>&1 &
      pid=$!
      measure nginx 8082
      ;;
    hb)
      PORT=8081 "$dir/out/hb-anchor/.build/release/HBAnchor" >"$out/hb.server.log" 2>&1 &
      pid=$!
      measure hb 8081
      ;;
    http)
      "$scratch"/release/http-bench-server 8083 >"$out/http.server.log" 2>&1 &
      pid=$!
      measure http 8083
      ;;
    http-old)
      "$OLD_BENCH_SERVER" 8086 >"$out/http-old.server.log" 2>&1 &
      pid=$!
      measure http-old 8086
      ;;
    nginx-tls)
      scheme=https
      make_certificate
      mkdir -p "$dir/out/nginx-tls"
      sed -e "s|listen 127.0.0.1:8082 reuseport;|listen 127.0.0.1:8088 ssl reuseport; ssl_certificate $out/tls/cert.pem; ssl_certificate_key $out/tls/key.pem;|" \
        "$dir/nginx/nginx.conf" >"$out/nginx-tls.conf"
      nginx -p "$dir/out/nginx-tls/" -c "$out/nginx-tls.conf" -g "worker_processes 1;" >"$out/nginx-tls.server.log" 2>&1 &
      pid=$!
      measure nginx-tls 8088
      ;;
    https | https-old)
      scheme=https
      make_certificate
      binary="$scratch/release/http-bench-server"
      port=8085
      if [ "$server" = https-old ]; then
        binary="$OLD_BENCH_SERVER"
        port=8087
      fi
      "$binary" "$port" "$out/tls/cert.pem" "$out/tls/key.pem" >"$out/$server.server.log" 2>&1 &
      pid=$!
      measure "$server" "$port"
      ;;
    adjoint)
      .build-release/release/adjoint serve --port 8084 >"$out/adjoint.server.log" 2>&1 &
      pid=$!
      measure adjoint 8084
      ;;
    esac
  done
done

python3 - "$summary" >"$out/table.md" <<'PY'
import statistics, sys
runs = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
# One row per server, scenario and connection count: the median of each figure over the rounds.
groups = {}
for r in runs:
    groups.setdefault((r[0], r[1], r[2]), []).append(r)
rows = []
for key, group in groups.items():
    median = lambda column: statistics.median(float(r[column]) for r in group)
    errors = "; ".join(r[8] for r in group if r[8])
    rows.append([*key, f"{median(3):.0f}", f"{median(4):.3f}", f"{median(5):.3f}", f"{median(6):.1f}",
                 str(sum(int(r[7]) for r in group)), errors, str(len(group))])
by = {(r[0], r[1], r[2]): r for r in rows}
print("| server | scenario | conns | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx | socket errors "
      "| req/s vs hb | req/s vs http | req/s vs nginx | CPU vs nginx | rounds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
def ratio(row, other, column):
    if not other or float(other[column]) <= 0:
        return "—"
    return f"{float(row[column]) / float(other[column]):.2f}x"
for r in rows:
    vs_hb = ratio(r, by.get(("hb", r[1], r[2])), 3)
    vs_http = ratio(r, by.get(("http", r[1], r[2])), 3)
    rps_nginx = ratio(r, by.get(("nginx", r[1], r[2])), 3)
    vs_nginx = ratio(r, by.get(("nginx", r[1], r[2])), 6)
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]} | {r[8] or '0'} "
          f"| {vs_hb} | {vs_http} | {rps_nginx} | {vs_nginx} | {r[9]} |")
PY
cat "$out/table.md"
