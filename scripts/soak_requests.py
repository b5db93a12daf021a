#!/usr/bin/env python3
"""The request mix of scripts/soak: every endpoint of the API, good and malformed, each with the status it must get.

    soak_requests.py URL OUT          writes OUT, the requests for scripts/soak.lua, and checks each once

Each kind is one raw HTTP/1.1 request and the one status the API gives it. Its `X-Request-Id` names the kind (the
server echoes the id in its response), so that the Lua script can tell which request a response answers. Three
kinds are made by the Lua script as it goes, because they need ids the server hands out: `graphs_post_new` registers
a graph never seen before (201), `graphs_get_new` reads one of them back (200) and `graphs_delete_new` deletes it
(204). Before writing, every static kind is sent once on a connection of its own, and a status other than the
expected one is printed and makes the exit status 1.

OUT's format: a first line with the number of kinds, then per kind a line `NAME EXPECTED WEIGHT LENGTH` followed by
LENGTH bytes (the raw request; empty for the kinds the Lua script makes) and a line break. Needs only the standard
library.
"""
import base64
import gzip
import json
import socket
import struct
import sys
import urllib.parse
import urllib.request

url, out = sys.argv[1], sys.argv[2]
parts = urllib.parse.urlsplit(url)
host, port = parts.hostname, parts.port

S1 = {"expr": "sin(x*y) + x^2", "at": {"x": 1.5, "y": -0.5}}
W = [[0.5, -1.0, 0.25], [1.5, 0.75, -0.5], [-0.25, 1.0, 2.0]]
X = [0.3, -0.7, 1.1]
VECTOR = {"expr": "tanh(W @ x)", "at": {"W": W, "x": X}}
SCALAR = {"expr": "sum(tanh(W @ x)) + 0.5 * sum(x^2)", "at": {"W": W, "x": X}}
ROSEN = "a = slice(x, start=1); b = slice(x, stop=-1); sum(100*(a - b^2)^2 + (1 - b)^2)"
GRAPH = {
    "inputs": {"x": [3], "W": [3, 3]},
    "nodes": [
        {"id": "h", "op": "matmul", "args": ["W", "x"]},
        {"id": "a", "op": "tanh", "args": ["h"]},
        {"id": "s", "op": "mul", "args": ["a", 0.5]},
        {"id": "loss", "op": "sum", "args": ["s"]},
    ],
    "outputs": ["loss"],
}


def points(n, offset=0.0):
    return [{"x": 0.01 * i - 1.0 + offset, "y": 0.5 - 0.02 * i} for i in range(n)]


def vector_points(n):
    return [{"W": W, "x": [X[0] + 0.1 * i, X[1], X[2] - 0.05 * i]} for i in range(n)]


def raw(method, path, body=None, headers=None, content_type="application/json"):
    """A complete request; the X-Request-Id is filled in per kind below (the %ID% placeholder)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "X-Request-Id: %ID%"]
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode()
        if content_type:
            lines.append(f"Content-Type: {content_type}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def chunked(body):
    data = json.dumps(body).encode()
    half = len(data) // 2
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (data[:half], data[half:])) + b"0\r\n\r\n"


def f64(values):
    return base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode()


def post(path, body):
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# Graphs registered before the load and never deleted: the graph_id requests use the first, and POSTing either again
# must answer 200.
graph_id = post("/graphs", {"expr": S1["expr"]})["id"]
post("/graphs", {"graph": GRAPH})
unknown_id = "sha256:" + "0" * 64

# (name, expected status, weight, raw request or None for the kinds the Lua script makes)
kinds = [
    # --- every endpoint, well-formed
    ("evaluate", 200, 20, raw("POST", "/evaluate", S1)),
    ("evaluate_graph", 200, 10, raw("POST", "/evaluate", {"graph": GRAPH, "at": {"W": W, "x": X}})),
    ("evaluate_batch", 200, 5, raw("POST", "/evaluate", {"expr": S1["expr"], "batch": points(20)})),
    ("evaluate_nan_string", 200, 3, raw("POST", "/evaluate", {"expr": "x + 1", "at": {"x": "NaN"}})),
    ("gradient", 200, 40, raw("POST", "/gradient", S1)),
    ("gradient_wrt", 200, 10, raw("POST", "/gradient", {**S1, "wrt": ["x"]})),
    ("gradient_tensor", 200, 10, raw("POST", "/gradient", SCALAR)),
    ("gradient_rosenbrock", 200, 5, raw("POST", "/gradient", {"expr": ROSEN, "at": {"x": [0.1 * i for i in range(50)]}})),
    ("gradient_graph", 200, 10, raw("POST", "/gradient", {"graph": GRAPH, "at": {"W": W, "x": X}})),
    ("gradient_batch", 200, 10, raw("POST", "/gradient", {"expr": "(1 - x)^2 + 100*(y - x^2)^2", "batch": points(100)})),
    ("gradient_layout_flat", 200, 5, raw("POST", "/gradient", {**SCALAR, "layout": "flat"})),
    ("gradient_layout_base64", 200, 5, raw("POST", "/gradient", {**SCALAR, "layout": "base64"})),
    ("gradient_flat_inputs", 200, 5, raw("POST", "/gradient", {"expr": SCALAR["expr"], "at": {
        "W": {"shape": [3, 3], "data": [v for row in W for v in row]}, "x": {"shape": [3], "data": X}}})),
    ("gradient_base64_inputs", 200, 5, raw("POST", "/gradient", {"expr": SCALAR["expr"], "at": {
        "W": {"shape": [3, 3], "base64": f64([v for row in W for v in row])}, "x": {"shape": [3], "base64": f64(X)}}})),
    ("gradient_where_zero", 200, 5, raw("POST", "/gradient", {"expr": "where(x > 0, sqrt(x), 0)", "at": {"x": -1.0}})),
    ("gradient_check_numerics", 200, 5, raw("POST", "/gradient", {**S1, "check_numerics": True})),
    ("gradient_graph_id", 200, 20, raw("POST", "/gradient", {"graph_id": graph_id, "at": S1["at"]})),
    ("gradient_graph_id_batch", 200, 5, raw("POST", "/gradient", {"graph_id": graph_id, "batch": points(20)})),
    ("gradient_gzip", 200, 10, raw("POST", "/gradient", gzip.compress(json.dumps(S1).encode()),
                                   {"Content-Encoding": "gzip"})),
    ("gradient_batch_gzip", 200, 5, raw("POST", "/gradient", gzip.compress(json.dumps(
        {"expr": S1["expr"], "batch": points(200)}).encode()), {"Content-Encoding": "gzip"})),
    ("gradient_accept_gzip", 200, 5, raw("POST", "/gradient", {"expr": S1["expr"], "batch": points(100)},
                                         {"Accept-Encoding": "gzip"})),
    ("gradient_chunked", 200, 5, raw("POST", "/gradient", chunked(S1), {"Transfer-Encoding": "chunked"})),
    ("vjp", 200, 10, raw("POST", "/vjp", {**VECTOR, "cotangent": [1.0, -2.0, 0.5]})),
    ("vjp_batch", 200, 5, raw("POST", "/vjp", {"expr": VECTOR["expr"], "batch": vector_points(10),
                                               "cotangent": [1.0, -2.0, 0.5]})),
    ("jvp", 200, 10, raw("POST", "/jvp", {**VECTOR, "tangent": {"x": [1.0, 0.0, -1.0]}})),
    ("jvp_batch", 200, 5, raw("POST", "/jvp", {"expr": VECTOR["expr"], "batch": vector_points(10),
                                               "tangent": {"x": [1.0, 0.0, -1.0]}})),
    ("jacobian", 200, 10, raw("POST", "/jacobian", VECTOR)),
    ("jacobian_auto", 200, 5, raw("POST", "/jacobian", {**VECTOR, "mode": "auto"})),
    ("jacobian_forward", 200, 5, raw("POST", "/jacobian", {**VECTOR, "mode": "forward", "wrt": ["x"]})),
    ("jacobian_reverse", 200, 5, raw("POST", "/jacobian", {**VECTOR, "mode": "reverse"})),
    ("jacobian_batch", 200, 5, raw("POST", "/jacobian", {"expr": VECTOR["expr"], "batch": vector_points(10),
                                                         "mode": "forward"})),
    ("hessian", 200, 10, raw("POST", "/hessian", SCALAR)),
    ("hessian_rosenbrock", 200, 3, raw("POST", "/hessian", {"expr": ROSEN, "at": {"x": [0.02 * i for i in range(30)]}})),
    ("hessian_batch", 200, 3, raw("POST", "/hessian", {"expr": S1["expr"], "batch": points(20)})),
    ("gradcheck", 200, 5, raw("POST", "/gradcheck", SCALAR)),
    ("gradcheck_eps", 200, 3, raw("POST", "/gradcheck", {**S1, "eps": 1e-5})),
    ("gradcheck_batch", 200, 3, raw("POST", "/gradcheck", {"expr": S1["expr"], "batch": points(10)})),
    ("graphs_post_known", 200, 5, raw("POST", "/graphs", {"expr": S1["expr"]})),
    ("graphs_post_graph_known", 200, 3, raw("POST", "/graphs", {"graph": GRAPH})),
    ("graphs_get_known", 200, 5, raw("GET", f"/graphs/{graph_id}")),
    ("graphs_get_unknown", 404, 3, raw("GET", f"/graphs/{unknown_id}")),
    ("graphs_delete_unknown", 404, 3, raw("DELETE", f"/graphs/{unknown_id}")),
    ("gradient_graph_id_unknown", 404, 3, raw("POST", "/gradient", {"graph_id": unknown_id, "at": S1["at"]})),
    ("graphs_post_new", 201, 5, None),
    ("graphs_get_new", 200, 6, None),
    ("graphs_delete_new", 204, 6, None),
    ("ops", 200, 3, raw("GET", "/ops")),
    ("healthz", 200, 20, raw("GET", "/healthz")),
    ("readyz", 200, 10, raw("GET", "/readyz")),
    ("metrics", 200, 2, raw("GET", "/metrics")),
    ("openapi", 200, 1, raw("GET", "/openapi.yaml")),
    # --- malformed: the status each must get
    ("bad_json", 400, 5, raw("POST", "/gradient", '{"expr": "x", "at": {"x": 1,}}')),
    ("truncated_json", 400, 5, raw("POST", "/gradient", json.dumps(S1)[:30])),
    ("empty_body", 400, 2, raw("POST", "/gradient", "")),
    ("deep_nesting", 400, 2, raw("POST", "/gradient", '{"expr": "x", "at": {"x": ' + "[" * 600 + "1" + "]" * 600 + "}}")),
    ("expr_syntax", 400, 5, raw("POST", "/gradient", {"expr": "sin(x", "at": {"x": 1.0}})),
    ("expr_and_graph", 400, 3, raw("POST", "/gradient", {"expr": "x", "graph": GRAPH, "at": {"x": 1.0}})),
    ("no_function", 400, 3, raw("POST", "/gradient", {"at": {"x": 1.0}})),
    ("ragged", 400, 5, raw("POST", "/gradient", {"expr": "sum(x)", "at": {"x": [[1, 2], [3]]}})),
    ("batch_ragged_point", 400, 3, raw("POST", "/gradient", {"expr": "sum(x)", "batch": [{"x": [1, 2]}, {"x": [[1], 2]}]})),
    ("string_number", 400, 3, raw("POST", "/gradient", {"expr": "x", "at": {"x": "one"}})),
    ("out_of_range", 400, 3, raw("POST", "/gradient", '{"expr": "x", "at": {"x": 1e400}}')),
    ("wrong_type", 400, 3, raw("POST", "/gradient", {"expr": 42, "at": {"x": 1.0}})),
    ("unknown_mode", 400, 3, raw("POST", "/jacobian", {**VECTOR, "mode": "sideways"})),
    ("unknown_layout", 400, 3, raw("POST", "/gradient", {**S1, "layout": "csv"})),
    ("bad_gzip", 400, 3, raw("POST", "/gradient", json.dumps(S1), {"Content-Encoding": "gzip"})),
    ("truncated_gzip", 400, 3, raw("POST", "/gradient", gzip.compress(json.dumps(S1).encode())[:-12],
                                   {"Content-Encoding": "gzip"})),
    ("oversize_batch", 413, 1, raw("POST", "/evaluate", '{"expr":"x","batch":[' + ",".join(['{"x":1}'] * 100_001) + "]}")),
    ("bad_content_type", 415, 5, raw("POST", "/gradient", json.dumps(S1), content_type="text/plain")),
    ("no_content_type", 415, 2, raw("POST", "/gradient", json.dumps(S1), content_type=None)),
    ("unsupported_encoding", 415, 3, raw("POST", "/gradient", json.dumps(S1), {"Content-Encoding": "br"})),
    ("unknown_op", 422, 5, raw("POST", "/gradient", {"expr": "frobnicate(x)", "at": {"x": 1.0}})),
    ("unknown_graph_op", 422, 3, raw("POST", "/gradient", {"graph": {"nodes": [
        {"id": "y", "op": "frobnicate", "args": ["x"]}]}, "at": {"x": 1.0}})),
    ("graph_cycle", 422, 3, raw("POST", "/evaluate", {"graph": {"nodes": [
        {"id": "a", "op": "add", "args": ["b", "x"]}, {"id": "b", "op": "mul", "args": ["a", 2]}],
        "outputs": ["a"]}, "at": {"x": 1.0}})),
    ("graph_duplicate_id", 422, 3, raw("POST", "/evaluate", {"graph": {"nodes": [
        {"id": "a", "op": "sin", "args": ["x"]}, {"id": "a", "op": "cos", "args": ["x"]}]}, "at": {"x": 1.0}})),
    ("shape_mismatch", 422, 5, raw("POST", "/gradient", {"expr": "sum(W @ x)", "at": {"W": W, "x": [1.0, 2.0]}})),
    ("missing_input", 422, 5, raw("POST", "/gradient", {"expr": "x * y", "at": {"x": 1.0}})),
    ("extra_input", 422, 3, raw("POST", "/gradient", {"expr": "x", "at": {"x": 1.0, "z": 2.0}})),
    ("wrt_not_input", 422, 3, raw("POST", "/gradient", {**S1, "wrt": ["z"]})),
    ("tangent_not_input", 422, 3, raw("POST", "/jvp", {**VECTOR, "tangent": {"z": 1.0}})),
    ("cotangent_shape", 422, 3, raw("POST", "/vjp", {**VECTOR, "cotangent": [1.0, 2.0]})),
    ("non_scalar_gradient", 422, 5, raw("POST", "/gradient", VECTOR)),
    ("non_scalar_hessian", 422, 3, raw("POST", "/hessian", VECTOR)),
    ("check_numerics_nan", 422, 3, raw("POST", "/gradient", {"expr": "log(x)", "at": {"x": -1.0},
                                                             "check_numerics": True})),
    ("get_gradient", 405, 3, raw("GET", "/gradient")),
    ("put_graphs", 405, 2, raw("PUT", "/graphs", {"expr": "x"})),
    ("post_healthz", 405, 2, raw("POST", "/healthz", "{}")),
    ("delete_ops", 405, 2, raw("DELETE", "/ops")),
    ("unknown_path", 404, 3, raw("GET", "/nowhere")),
]


def exchange(request):
    """Sends one request on a fresh connection; returns its status (None when no status line came back)."""
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


wrong = 0
with open(out, "wb") as f:
    f.write(b"%d\n" % len(kinds))
    for index, (name, expected, weight, request) in enumerate(kinds, start=1):
        request = request.replace(b"%ID%", str(index).encode()) if request else b""
        if request:
            status = exchange(request)
            if status != expected:
                wrong += 1
                print(f"  {name}: status {status}, expected {expected}", file=sys.stderr)
        f.write(b"%s %d %d %d\n" % (name.encode(), expected, weight, len(request)) + request + b"\n")
print(f"{len(kinds)} kinds of request written to {out}; checked once each: "
      f"{'all as expected' if not wrong else f'{wrong} with another status'}", file=sys.stderr)
sys.exit(1 if wrong else 0)
