#!/usr/bin/env bash
# Load-tests Adjoint's HTTP server beside the service anchors of BENCHMARKS.md, with wrk on loopback, in one run.
#
#   [SCENARIOS="healthz s1 s2 s3"] [ROUNDS=N] scripts/bench_service.sh [SERVER...]
#
# SERVER is any of: nginx (the anchor's fixed reply, 1 worker), hb (the Hummingbird 2 anchor, hand-coded maths),
# jax2 and jax1 (the FastAPI + JAX jit anchor with 2 and 1 uvicorn workers, started as the anchors' run_all.sh
# starts them), http (http-bench-server: our HTTP server alone, answering the fixed S1 reply), adjoint (`adjoint
# serve --workers 2`, the real service, release build), https (http-bench-server over TLS, with a self-signed
# certificate made here). nginx-tls is nginx over TLS with the same certificate and fixed replies: the ceiling a
# TLS server reaches with this client. Default: nginx hb http https adjoint. http-old and https-old run the binary
# named by $OLD_BENCH_SERVER (an earlier http-bench-server kept for comparison) the same way. BENCH_SCRATCH is the
# build's scratch path (default .build-release).
#
# SCENARIOS (default "healthz s1") picks the workloads: healthz (`GET /healthz`, 16 and 64 connections), s1 (the
# S1 `POST /gradient`, 16 and 64 connections), s2 (the 1,000-point S2 batch, 16 connections) and s3 (the 8 MB S3
# MLP body, ${S3CONN:-2} connections), with the anchors' bodies and post.lua. A server is given only the scenarios
# it can answer (nginx and the http-bench-servers only healthz and s1, hb no s3). Each server is started alone,
# waited for, and its answers are checked before it is loaded: the anchors' bench/verify.py compares them with the
# closed forms (S1, S2) and a NumPy backpropagation (S3); a server that fails is not loaded. Every server's answers
# are also kept, and at the end compared with the JAX anchor's to 1e-9 (relative to the largest magnitude of each
# tensor). Then wrk loads it with one thread, keep-alive, a ${WARM:-3s} warm-up and a ${DURATION:-10s} run per
# scenario and connection count. ROUNDS=N repeats the whole sequence N times (default 1) and the table gives the
# median of each figure. Per row: requests per second, p50 and p99 latency, the server's CPU time (user + system,
# from /proc, all its processes) divided by the requests wrk completed, non-2xx responses (reported loudly: they
# make the script exit 3 after the table) and the server's peak RSS so far (the sum of VmHWM over its processes).
# Below the table, BENCHMARKS.md's targets: each ratio is taken between servers measured in the same round, and
# the median over the rounds is judged. The measurements hold ${LOCK:-/tmp/anchors.lock}.
#
# Needs wrk and nginx (Debian's wrk and nginx-light, installed when missing). The anchors are copied into
# scratch/anchors/service (they write beside themselves); the Hummingbird anchor is built there in release mode, and
# the Python anchors' venv is made there (.venv: NumPy for the checks; FastAPI, uvicorn, orjson and JAX for jax1 and
# jax2, installed from PyPI when missing). Outputs in scratch/anchors/service/out/http: one wrk log per run,
# answers/ (each server's answers), summary.tsv, table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
# shellcheck source=scripts/common.sh
. scripts/common.sh

servers=("$@")
[ ${#servers[@]} -eq 0 ] && servers=(nginx hb http https adjoint)
read -r -a scenarios <<<"${SCENARIOS:-healthz s1}"
duration="${DURATION:-10s}"
rounds="${ROUNDS:-1}"
warm="${WARM:-3s}"
s3connections="${S3CONN:-2}"
lock="${LOCK:-/tmp/anchors.lock}"
scratch="${BENCH_SCRATCH:-.build-release}"
dir="$root/scratch/anchors/service"
out="$dir/out/http"
bodies="$dir/out/bodies"
venv="$dir/.venv"
py="$venv/bin/python"
mkdir -p "$out/answers"
summary="$out/summary.tsv"
failures="$out/failures.txt"
log() { echo "== bench_service: $*" >&2; }
# A failure that must not scroll by unseen: printed now, again after the table, and the exit status is 3.
loud() {
  echo "!!!!!! bench_service: $*" >&2
  echo "$*" >>"$failures"
}

for scenario in "${scenarios[@]}"; do
  case "$scenario" in
  healthz | s1 | s2 | s3) ;;
  *)
    echo "unknown scenario $scenario (healthz, s1, s2, s3)" >&2
    exit 2
    ;;
  esac
done

adjoint_install_debian_packages wrk nginx-light
if [ ! -f "$dir/run_all.sh" ]; then
  log "copying the service anchors"
  mkdir -p "$dir"
  cp -r "$root/../shared/anchors/service/." "$dir/"
  chmod -R u+w "$dir"
fi

# The Python venv beside the anchors: NumPy always (the bodies and the answer checks), the FastAPI + JAX stack when
# a JAX anchor is to run. pip is run as `python -m pip` so that a venv that was moved still works.
python_packages=(numpy)
for server in "${servers[@]}"; do
  case "$server" in jax1 | jax2) python_packages=(fastapi "uvicorn[standard]" orjson "jax[cpu]" numpy) ;; esac
done
imports=numpy
[ ${#python_packages[@]} -gt 1 ] && imports="numpy, fastapi, uvicorn, orjson, jax"
if ! "$py" -c "import $imports" 2>/dev/null; then
  [ -x "$py" ] || python3 -m venv "$venv"
  log "installing ${python_packages[*]} into $venv"
  flock "$lock" "$py" -m pip install -q --disable-pip-version-check "${python_packages[@]}" >&2
fi
if [ ! -f "$bodies/s3.json" ] || [ ! -f "$bodies/s2.json" ] || [ ! -f "$bodies/s1.json" ]; then
  log "writing the S1, S2 and S3 bodies"
  "$py" "$dir/bench/gen_bodies.py" "$bodies" >&2
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
    flock "$lock" swift build -c release --scratch-path "$scratch" --product adjoint >&2
    ;;
  http-old | https-old)
    if [ ! -x "${OLD_BENCH_SERVER:-}" ]; then
      echo "$server needs OLD_BENCH_SERVER, the path of an earlier http-bench-server" >&2
      exit 2
    fi
    ;;
  nginx | nginx-tls | jax1 | jax2) ;;
  *)
    echo "unknown server $server (nginx, nginx-tls, hb, jax1, jax2, http, https, adjoint, http-old, https-old)" >&2
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
# The peak resident set (VmHWM) of a process and its descendants, summed, in kB.
peak_rss_kb() {
  local p sum=0 kb
  for p in "$1" $(descendants "$1"); do
    kb=$(awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null) || continue
    sum=$((sum + ${kb:-0}))
  done
  echo "$sum"
}
# Waits up to a minute (the JAX anchor imports JAX in every worker) for the server's /healthz.
wait_health() {
  for _ in $(seq 1 300); do
    curl -fsSk "$scheme://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The scenarios a server can answer, among those asked for.
scenarios_of() {
  local can
  case "$1" in
  hb) can="healthz s1 s2" ;;
  jax1 | jax2 | adjoint) can="healthz s1 s2 s3" ;;
  *) can="healthz s1" ;;
  esac
  local scenario
  for scenario in "${scenarios[@]}"; do
    case " $can " in *" $scenario "*) echo "$scenario" ;; esac
  done
}
connections_of() {
  case "$1" in
  healthz | s1) echo "16 64" ;;
  s2) echo 16 ;;
  s3) echo "$s3connections" ;;
  esac
}

# run NAME PORT SCENARIO CONNECTIONS
run() {
  local name=$1 port=$2 scenario=$3 connections=$4 file="$out/$1.$3.c$4.r$round.txt" url
  local -a script=() body=()
  if [ "$scenario" = healthz ]; then
    url="$scheme://127.0.0.1:$port/healthz"
  else
    url="$scheme://127.0.0.1:$port/gradient"
    script=(-s "$dir/bench/post.lua")
    body=(-- "$bodies/$scenario.json")
  fi
  wrk -t1 -c"$connections" -d"$warm" --timeout 10s "${script[@]}" "$url" "${body[@]}" >/dev/null 2>&1
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t1 -c"$connections" -d"$duration" --timeout 10s --latency "${script[@]}" "$url" "${body[@]}" >"$file" 2>&1
  after=$(cpu_ticks "$pid")
  python3 - "$file" "$name" "$scenario" "$connections" "$before" "$after" "$(getconf CLK_TCK)" \
    "$(peak_rss_kb "$pid")" "$round" >>"$summary" <<'PY'
import re, sys
path, name, scenario, connections, before, after, hz, rss_kb, round_ = sys.argv[1:]
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
print("\t".join([name, scenario, connections, f"{rps:.1f}", f"{p50:.3f}", f"{p99:.3f}", f"{cpu_us:.1f}",
                 non2xx.group(1) if non2xx else "0", errors.group(1) if errors else "",
                 f"{int(rss_kb) / 1024:.1f}", round_]))
PY
  local row
  row=$(tail -n 1 "$summary")
  echo "$row" >&2
  local non2xx errors
  non2xx=$(cut -f8 <<<"$row")
  errors=$(cut -f9 <<<"$row")
  [ "$non2xx" = 0 ] || loud "$name $scenario c$connections round $round: $non2xx non-2xx responses (see $file)"
  [ -z "$errors" ] || loud "$name $scenario c$connections round $round: socket errors: $errors (see $file)"
}

# Checks a server's answers before it is loaded, and keeps them (first round) for the comparison with JAX's.
check_answers() {
  local name=$1 port=$2 scenario
  local -a posts=()
  for scenario in $(scenarios_of "$name"); do
    [ "$scenario" = healthz ] || posts+=("$scenario")
  done
  [ ${#posts[@]} -eq 0 ] && return 0
  if [ "$scheme" != http ]; then
    log "$name: answers not checked over TLS (fixed replies)"
    return 0
  fi
  [ "$round" = 1 ] && rm -f "$out/answers/$name".*.json
  local list
  list=$(
    IFS=,
    echo "${posts[*]}"
  )
  if ! "$py" "$dir/bench/verify.py" "http://127.0.0.1:$port" "$bodies" "$list" >&2; then
    return 1
  fi
  if [ "$round" = 1 ]; then
    for scenario in "${posts[@]}"; do
      curl -fsS -H 'Content-Type: application/json' --data-binary "@$bodies/$scenario.json" \
        "http://127.0.0.1:$port/gradient" -o "$out/answers/$name.$scenario.json" || return 1
    done
  fi
}

measure() {
  local name=$1 port=$2
  log "$name on port $port"
  if ! wait_health "$port"; then
    loud "$name did not come up; see $out/$name.server.log"
    stop_server
    return 0
  fi
  if ! check_answers "$name" "$port"; then
    loud "$name round $round: wrong answers, not loaded"
    stop_server
    return 0
  fi
  local scenario connections
  for scenario in $(scenarios_of "$name"); do
    for connections in $(connections_of "$scenario"); do
      run "$name" "$port" "$scenario" "$connections"
    done
  done
  stop_server
}
# Stops the server by its pid (uvicorn's workers end with their supervisor; stragglers are ended by their pids).
stop_server() {
  local children
  children=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local child
  for child in $children; do
    kill -TERM "$child" 2>/dev/null || true
  done
}
# start NAME PORT COMMAND...: starts a server in the background, refusing a port someone else holds.
start() {
  local name=$1 port=$2
  shift 2
  if ! port_free "$port"; then
    loud "$name: port $port is already in use; not measured"
    return 1
  fi
  "$@" >"$out/$name.server.log" 2>&1 &
  pid=$!
}

# A self-signed certificate for the TLS rows.
make_certificate() {
  if [ ! -f "$out/tls/key.pem" ]; then
    mkdir -p "$out/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$out/tls/key.pem" -out "$out/tls/cert.pem" >/dev/null 2>&1
  fi
}

# Hold the benchmark lock for the whole measurement, so no other benchmark job runs beside it; the outputs of the
# previous run are cleared only then, since a run waiting for the lock must not clear those of the one holding it.
exec 9>>"$lock"
flock 9
: >"$summary"
: >"$failures"
for round in $(seq 1 "$rounds"); do
  for server in "${servers[@]}"; do
    log "round $round of $rounds"
    scheme=http
    case "$server" in
    nginx)
      mkdir -p "$dir/out/nginx"
      start nginx 8082 nginx -p "$dir/out/nginx/" -c "$dir/nginx/nginx.conf" -g "worker_processes 1;" &&
        measure nginx 8082
      ;;
    hb)
      start hb 8081 env PORT=8081 "$dir/out/hb-anchor/.build/release/HBAnchor" && measure hb 8081
      ;;
    jax1 | jax2)
      start "$server" 8000 env ANCHOR_BACKEND=jax "$py" -m uvicorn --app-dir "$dir/python" app:app \
        --host 127.0.0.1 --port 8000 --workers "${server#jax}" --no-access-log --log-level warning &&
        measure "$server" 8000
      ;;
    http)
      start http 8083 "$scratch"/release/http-bench-server 8083 && measure http 8083
      ;;
    http-old)
      start http-old 8086 "$OLD_BENCH_SERVER" 8086 && measure http-old 8086
      ;;
    nginx-tls)
      scheme=https
      make_certificate
      mkdir -p "$dir/out/nginx-tls"
      sed -e "s|listen 127.0.0.1:8082 reuseport;|listen 127.0.0.1:8088 ssl reuseport; ssl_certificate $out/tls/cert.pem; ssl_certificate_key $out/tls/key.pem;|" \
        "$dir/nginx/nginx.conf" >"$out/nginx-tls.conf"
      start nginx-tls 8088 nginx -p "$dir/out/nginx-tls/" -c "$out/nginx-tls.conf" -g "worker_processes 1;" &&
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
      start "$server" "$port" "$binary" "$port" "$out/tls/cert.pem" "$out/tls/key.pem" && measure "$server" "$port"
      ;;
    adjoint)
      start adjoint 8084 "$scratch"/release/adjoint serve --port 8084 --workers 2 --log-level warning &&
        measure adjoint 8084
      ;;
    esac
  done
done

# The answers of this run's servers beside the JAX anchor's (jax2's, else jax1's, from this run or an earlier one).
"$py" - "$out/answers" "${servers[@]}" >"$out/answers.txt" 2>&1 <<'PY' ||
import json, os, sys
import numpy as np
folder, servers = sys.argv[1], sys.argv[2:]
def leaves(value, path=""):
    """(pointer, array) for every number or nested array of numbers in a response."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from leaves(value[key], f"{path}/{key}")
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}/{index}")
    else:
        yield path, np.asarray(value, dtype=np.float64)
bad = 0
for scenario in ("s1", "s2", "s3"):
    reference = next((f"{folder}/{jax}.{scenario}.json" for jax in ("jax2", "jax1")
                      if os.path.exists(f"{folder}/{jax}.{scenario}.json")), None)
    if reference is None:
        continue
    want = dict(leaves(json.load(open(reference))))
    for path in (f"{folder}/{server}.{scenario}.json" for server in servers):
        if path == reference or not os.path.exists(path):
            continue
        got = dict(leaves(json.load(open(path))))
        worst, problem = 0.0, ""
        if got.keys() != want.keys():
            problem = f"fields differ: {sorted(got.keys() ^ want.keys())[:5]}"
        for key in want.keys() & got.keys():
            if got[key].shape != want[key].shape:
                problem = f"{key}: shape {got[key].shape} != {want[key].shape}"
                continue
            scale = max(float(np.max(np.abs(want[key]), initial=0.0)), 1e-300)
            worst = max(worst, float(np.max(np.abs(got[key] - want[key]), initial=0.0)) / scale)
        ok = not problem and worst <= 1e-9
        bad += not ok
        print(f"{os.path.basename(path)} vs {os.path.basename(reference)}: largest relative difference {worst:.1e}"
              f" {'OK' if ok else 'FAIL'} {problem}")
sys.exit(1 if bad else 0)
PY
  loud "answers differ from the JAX anchor's: see $out/answers.txt"
[ -s "$out/answers.txt" ] && tail -n 20 "$out/answers.txt" >&2

python3 - "$summary" >"$out/table.md" <<'PY'
import statistics, sys
runs = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
# One row per server, scenario and connection count: the median of each figure over the rounds.
groups = {}
for r in runs:
    groups.setdefault((r[0], r[1], r[2]), []).append(r)
rows = {}
for key, group in groups.items():
    median = lambda column: statistics.median(float(r[column]) for r in group)
    rows[key] = {"rps": median(3), "p50": median(4), "p99": median(5), "cpu": median(6),
                 "non2xx": sum(int(r[7]) for r in group), "errors": "; ".join(r[8] for r in group if r[8]),
                 "rss": max(float(r[9]) for r in group), "rounds": len(group)}
def best_jax(scenario, connections, field, pick):
    found = [rows[(j, scenario, connections)][field] for j in ("jax1", "jax2") if (j, scenario, connections) in rows]
    return pick(found) if found else None
def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "—"
print("| server | scenario | conns | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx | socket errors "
      "| peak RSS MiB | req/s vs hb | req/s vs best jax | req/s vs http | req/s vs nginx | CPU vs nginx | rounds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (name, scenario, connections), r in rows.items():
    other = lambda server, field: rows.get((server, scenario, connections), {}).get(field)
    non2xx = f"**{r['non2xx']}**" if r["non2xx"] else "0"
    errors = f"**{r['errors']}**" if r["errors"] else "0"
    print(f"| {name} | {scenario} | {connections} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['cpu']:.1f} "
          f"| {non2xx} | {errors} | {r['rss']:.0f} | {ratio(r['rps'], other('hb', 'rps'))} "
          f"| {ratio(r['rps'], best_jax(scenario, connections, 'rps', max))} | {ratio(r['rps'], other('http', 'rps'))} "
          f"| {ratio(r['rps'], other('nginx', 'rps'))} | {ratio(r['cpu'], other('nginx', 'cpu'))} | {r['rounds']} |")
# The targets. A ratio is taken between servers measured in the same round (the machine's load drifts between
# rounds), and the median of the rounds' ratios is what is judged; the ratio of the medians above is shown beside it.
by_round = {}
for r in runs:
    by_round.setdefault(r[10], {})[(r[0], r[1], r[2])] = r
columns = {"rps": 3, "p50": 4, "p99": 5, "cpu": 6}
def figure(rows_of_round, server, scenario, connections, field):
    if server == "jax":  # the best of the JAX anchors: the most requests per second, the lowest latency
        found = [figure(rows_of_round, j, scenario, connections, field) for j in ("jax1", "jax2")]
        found = [f for f in found if f is not None]
        return (max if field == "rps" else min)(found) if found else None
    row = rows_of_round.get((server, scenario, connections))
    return float(row[columns[field]]) if row else None
targets = []
def ratio_target(what, scenario, connections, field, other, goal, passed):
    ratios = []
    for rows_of_round in by_round.values():
        a = figure(rows_of_round, "adjoint", scenario, connections, field)
        b = figure(rows_of_round, other, scenario, connections, field)
        if a is not None and b:
            ratios.append(a / b)
    if not ratios:
        return
    m = statistics.median(ratios)
    a = rows.get(("adjoint", scenario, connections), {}).get(field)
    b = rows.get((other, scenario, connections), {}).get(field) if other != "jax" else \
        best_jax(scenario, connections, field, max if field == "rps" else min)
    of_medians = f"{a / b:.2f}" if a is not None and b else "—"
    targets.append(f"| {what} | {m:.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) | {of_medians} | {goal} "
                   f"| {'yes' if passed(m) else '**no**'} |")
def value_target(what, scenario, connections, field, unit, goal, passed):
    values = [figure(rows_of_round, "adjoint", scenario, connections, field) for rows_of_round in by_round.values()]
    values = [v for v in values if v is not None]
    if values:
        m = statistics.median(values)
        targets.append(f"| {what} | {m:.3g} {unit} ({', '.join(f'{v:.3g}' for v in values)}) | — | {goal} "
                       f"| {'yes' if passed(m) else '**no**'} |")
for c in ("16", "64"):
    ratio_target(f"S1 c{c}: adjoint req/s / hb req/s", "s1", c, "rps", "hb", "≥ 1.5", lambda m: m >= 1.5)
    ratio_target(f"S1 c{c}: adjoint req/s / best jax req/s", "s1", c, "rps", "jax", "≥ 5", lambda m: m >= 5)
value_target("S1 c64: adjoint p99", "s1", "64", "p99", "ms", "< 2 ms", lambda m: m < 2)
for c in ("16", "64"):
    value_target(f"S1 c{c}: adjoint server CPU per request", "s1", c, "cpu", "µs", "≤ 25 µs", lambda m: m <= 25)
ratio_target("S2 c16: adjoint req/s / best jax req/s", "s2", "16", "rps", "jax", "≥ 5", lambda m: m >= 5)
for c in sorted({k[2] for k in rows if k[0] == "adjoint" and k[1] == "s3"}):
    ratio_target(f"S3 c{c}: adjoint p50 / best jax p50", "s3", c, "p50", "jax", "≤ 0.25", lambda m: m <= 0.25)
if targets:
    print()
    print("| target | median of the rounds (each round) | ratio of the medians | goal | met |")
    print("|---|---|---|---|---|")
    print("\n".join(targets))
PY
cat "$out/table.md"
if [ -s "$failures" ]; then
  echo >&2
  echo "!!!!!! bench_service: FAILURES (the figures above may not mean what they say):" >&2
  sed -e 's/^/!!!!!!   /' "$failures" >&2
  exit 3
fi
