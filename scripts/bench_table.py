"""Prints the table of `scripts/bench engine`: per workload, Adjoint's median beside each anchor's, and their ratio.

Usage: bench_table.py ADJOINT.jsonl ANCHORS.jsonl STATUS.jsonl [VERSIONS.txt]

ADJOINT.jsonl holds adjoint-bench's lines, ANCHORS.jsonl the anchors' lines (anchors/engine's JSON format), and
STATUS.jsonl one {"anchor": KEY, "reason": TEXT} per step that failed or was skipped. A missing file, a line that is
not JSON or a missing result becomes a "—" with its reason; nothing here raises on bad input.
"""

import json
import sys

# (engine, form, label, named by the issue, status key of the step that produces it), per workload.
ANCHORS = {
    "W1": [
        ("C -O3", "hand-coded adjoint", "C -O3, hand-written adjoint (no AD)", True, "c"),
        ("ADOL-C", "reuse tape: gradient() at new point", "ADOL-C, re-evaluate an existing tape", True, "adolc-w1"),
        ("ADOL-C", "record tape + gradient()", "ADOL-C, record tape + gradient()", True, "adolc-w1"),
        ("ADOL-C", "record tape (keep) + fos_reverse", "ADOL-C, record tape (keep) + fos_reverse", True, "adolc-w1"),
        ("jax", "jit (lax.fori_loop)", "JAX jit (lax.fori_loop)", False, "jax-jit"),
        ("torch", "eager", "PyTorch eager", False, "torch-eager"),
        ("python-float", "hand-coded adjoint", "Python floats, hand-written adjoint (no AD)", False, "numpy"),
    ],
    "W1-eager": [
        ("ADOL-C", "record tape + gradient()", "ADOL-C, record tape + gradient()", True, "adolc-w1"),
        ("ADOL-C", "record tape (keep) + fos_reverse", "ADOL-C, record tape (keep) + fos_reverse", True, "adolc-w1"),
        ("torch", "eager", "PyTorch eager", False, "torch-eager"),
    ],
    "W2": [
        ("numpy", "analytic", "NumPy, hand-written gradient (no AD)", True, "numpy"),
        ("jax", "jit", "JAX jit", True, "jax-jit"),
        ("C -O3", "analytic", "C -O3, hand-written gradient (no AD)", False, "c"),
        ("ADOL-C", "reuse tape: gradient()", "ADOL-C, re-evaluate an existing tape", False, "adolc-w2"),
        ("ADOL-C", "record tape + gradient()", "ADOL-C, record tape + gradient()", False, "adolc-w2"),
        ("torch", "eager", "PyTorch eager", False, "torch-eager"),
    ],
    "W3": [
        ("numpy", "analytic", "NumPy + OpenBLAS, hand-written gradient (no AD)", True, "numpy"),
        ("torch", "eager", "PyTorch eager", True, "torch-eager"),
        ("jax", "jit", "JAX jit", False, "jax-jit"),
    ],
    "W4": [
        ("jax", "jit jax.hessian", "JAX jit, jax.hessian", True, "jax-jit"),
        ("ADOL-C", "reuse tape: hessian() driver", "ADOL-C, re-evaluate an existing tape", True, "adolc-w1"),
        ("ADOL-C", "record tape + hessian()", "ADOL-C, record tape + hessian()", True, "adolc-w1"),
        ("numpy", "analytic", "NumPy, hand-written Hessian (no AD)", False, "numpy"),
        ("torch", "eager autograd.functional.hessian(vectorize=True)", "PyTorch eager, hessian(vectorize=True)", False,
         "torch-eager"),
        ("torch", "eager autograd.functional.hessian", "PyTorch eager, hessian (default)", False, "torch-eager"),
    ],
}
UNITS = {"W1": "ns/op", "W1-eager": "ns/op", "W2": "ms", "W3": "ms", "W4": "ms"}


def read_lines(path):
    """The JSON objects of a file, one per line; anything else is skipped."""
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError as error:
        print(f"bench_table: cannot read {path}: {error.strerror}", file=sys.stderr)
    return records


def number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def median(record, workload):
    """The record's median in the workload's unit: ns per operation for W1, milliseconds otherwise."""
    if record is None:
        return None
    if UNITS.get(workload) == "ns/op":
        value = number(record.get("ns_per_op"))
        if value is None and number(record.get("median_s")) is not None and number(record.get("ops")):
            value = record["median_s"] * 1e9 / record["ops"]
        return value
    value = number(record.get("median_ms"))
    if value is None and number(record.get("median_s")) is not None:
        value = record["median_s"] * 1e3
    return value


def fmt(value):
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs <= 0:
        return "—"
    value = ours / theirs
    return f"{value:.3g}×" if value < 100 else f"{value:,.0f}×"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ours = {}
    for record in read_lines(argv[1]):
        ours.setdefault(record.get("workload"), record)
    anchor_records = read_lines(argv[2])
    anchors = {}
    for record in anchor_records:
        anchors.setdefault((record.get("engine"), record.get("form"), record.get("workload")), record)
    reasons = {}
    for record in read_lines(argv[3]):
        reasons.setdefault(record.get("anchor"), str(record.get("reason", "")))

    print("| workload | unit | Adjoint | anchor | anchor median | Adjoint / anchor |")
    print("|---|---|---|---|---|---|")
    for workload, rows in ANCHORS.items():
        record = ours.get(workload)
        our = median(record, workload)
        if our is not None:
            adjoint = fmt(our)
        else:
            adjoint = "— (" + (reasons.get(f"adjoint:{workload}") or "no result") + ")"
        first = True
        for engine, form, label, named, key in rows:
            theirs_record = anchors.get((engine, form, workload if workload != "W1-eager" else "W1"))
            theirs = median(theirs_record, "W1" if workload == "W1-eager" else workload)
            if theirs is not None:
                theirs_text = fmt(theirs)
            elif key in reasons:
                theirs_text = f"— ({reasons[key]})"
            else:
                theirs_text = "— (no result)"
            name = label + (" *" if named else "")
            lead = (workload, UNITS[workload], adjoint) if first else ("", "", "")
            print("| " + " | ".join(cell(c) for c in (*lead, name, theirs_text, ratio(our, theirs))) + " |")
            first = False
    print()
    print("Medians of repeated timed calls after a warm-up, one thread each, run one after the other in one run.")
    print("Ratio above 1: Adjoint is slower. * marks the anchors the engine issue compares against.")

    print()
    print("Adjoint's measurements:")
    for workload in ANCHORS:
        record = ours.get(workload)
        if record is None:
            print(f"- {workload}: — ({reasons.get(f'adjoint:{workload}') or 'no result'})")
            continue
        parts = []
        for key, scale, unit in (("median_s", 1e3, "ms"), ("min_s", 1e3, "ms"), ("max_s", 1e3, "ms")):
            if number(record.get(key)) is not None:
                parts.append(f"{key[:-2]} {record[key] * scale:.4g} {unit}")
        for key in ("runs", "ns_per_op", "gflops", "value", "grad", "gcheck", "hcheck"):
            if key in record:
                value = record[key]
                parts.append(f"{key} {value:.6g}" if isinstance(value, float) and key != "value" else f"{key} {value}")
        print(f"- {workload}: " + ", ".join(parts))

    checks = [r for r in anchor_records if r.get("workload") in ("W1", "W2", "W3") and
              ("grad" in r or "gcheck" in r) and "value" in r]
    if checks:
        print()
        print("Anchors' values, for comparison (W1: value and gradient; W2: value, sum and norm of the gradient;")
        print("W3 data differs from Adjoint's, drawn by NumPy's generator):")
        for r in checks:
            check = r.get("grad", r.get("gcheck"))
            print(f"- {r.get('workload')} {r.get('engine')}, {r.get('form')}: value {r.get('value')}, {check}")

    numpy_info = anchors.get(("numpy", "info", "-"))
    if numpy_info and isinstance(numpy_info.get("blas"), list):
        print()
        kernels = "; ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')} kernels, {b.get('num_threads')} thread)"
            for b in numpy_info["blas"] if isinstance(b, dict))
        print(f"NumPy {numpy_info.get('numpy')} BLAS: {kernels or 'none found'}; OPENBLAS_CORETYPE "
              f"{numpy_info.get('env_OPENBLAS_CORETYPE') or 'unset'}, OPENBLAS_L2_SIZE "
              f"{numpy_info.get('env_OPENBLAS_L2_SIZE') or 'unset'}.")

    skipped = [(k, v) for k, v in reasons.items() if not str(k).startswith("adjoint:")]
    if skipped:
        print()
        print("Anchors that failed or were skipped:")
        for key, reason in skipped:
            print(f"- {key}: {reason}")

    if len(argv) > 4:
        try:
            with open(argv[4], encoding="utf-8") as handle:
                versions = [line.rstrip() for line in handle if line.strip()]
        except OSError:
            versions = []
        if versions:
            print()
            print("Versions and machine:")
            for line in versions:
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
