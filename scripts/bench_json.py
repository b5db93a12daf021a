#!/usr/bin/env python3
"""The orjson side of scripts/bench_json.sh: times, single-threaded, exactly the operations that
Tests/AdjointJSONTests/JSONBenchmarkTests.swift times on the Swift side.

usage: bench_json.py BODIES_DIR

Reads s2.json and s3.json (from the anchors' gen_bodies.py), writes two derived bodies beside them for the Swift
side, and prints one line per operation: "name<TAB>median seconds" (of this thread's CPU time).

  s3_grad.json  the S3 gradient response {"value": v, "gradient": {"W1": [[...]], "b1": [...], ...}}, the gradient
                computed with numpy by hand-written backprop (as the anchors' verify.py does)
  s3_b64.json   the S3 request with every tensor of "at" in the base64 form {"shape": [...], "base64": "..."}
Needs numpy and orjson.
"""
import base64
import os
import sys
import time

import numpy as np
import orjson

bodies = sys.argv[1]


def median_time(fn, min_runs=7, min_seconds=1.0):
    """The median CPU time of fn() (this thread's, steadier than the wall clock on a shared machine), over at least
    min_runs runs and min_seconds (at most 2,000 runs), after one warm-up run."""
    fn()
    ts = []
    start = time.thread_time()
    while len(ts) < min_runs or (time.thread_time() - start < min_seconds and len(ts) < 2000):
        a = time.thread_time_ns()
        fn()
        ts.append((time.thread_time_ns() - a) * 1e-9)
    ts.sort()
    return ts[len(ts) // 2]


s2_raw = open(os.path.join(bodies, "s2.json"), "rb").read()
s3_raw = open(os.path.join(bodies, "s3.json"), "rb").read()

# The S3 gradient (numpy, float64), as in verify.py.
req = orjson.loads(s3_raw)
names = tuple(req["at"].keys())
at = {k: np.asarray(v, dtype=np.float64) for k, v in req["at"].items()}
X, W1, b1, W2, b2, Y = (at[k] for k in ("X", "W1", "b1", "W2", "b2", "Y"))
h = np.tanh(X @ W1 + b1)
z = h @ W2 + b2
m = z.max(axis=1, keepdims=True)
lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
loss = float(np.mean(lse - (z * Y).sum(axis=1)))
dz = (np.exp(z - lse[:, None]) - Y) / X.shape[0]
da = (dz @ W2.T) * (1 - h * h)
grads = {"W1": X.T @ da, "b1": da.sum(0), "W2": h.T @ dz, "b2": dz.sum(0)}
resp = {"value": loss, "gradient": grads}
grad_bytes = orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)
with open(os.path.join(bodies, "s3_grad.json"), "wb") as f:
    f.write(grad_bytes)


def b64_tensor(a):
    a = np.ascontiguousarray(a, dtype="<f8")
    return {"shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


b64_req = dict(req)
b64_req["at"] = {k: b64_tensor(v) for k, v in at.items()}
b64_raw = orjson.dumps(b64_req)
with open(os.path.join(bodies, "s3_b64.json"), "wb") as f:
    f.write(b64_raw)

b2_batch = orjson.loads(s2_raw)["batch"]
s2_resp = {"results": [{"value": p["x"] * p["y"], "gradient": {"x": p["x"], "y": p["y"]}} for p in b2_batch]}


def s3_decode():
    body = orjson.loads(s3_raw)
    return [np.asarray(body["at"][n], dtype=np.float64) for n in names]


def s3_b64_decode():
    body = orjson.loads(b64_raw)
    out = []
    for n in names:
        t = body["at"][n]
        out.append(np.frombuffer(base64.b64decode(t["base64"]), dtype="<f8").reshape(t["shape"]))
    return out


def s3_b64_encode():
    return orjson.dumps({"value": loss, "gradient": {k: b64_tensor(v) for k, v in grads.items()}})


ops = [
    ("s3_decode_nested", s3_decode),
    ("s3_encode_nested", lambda: orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)),
    ("s2_decode", lambda: orjson.loads(s2_raw)),
    ("s2_encode", lambda: orjson.dumps(s2_resp)),
    ("s3_decode_base64", s3_b64_decode),
    ("s3_encode_base64", s3_b64_encode),
]
for name, fn in ops:
    print(f"{name}\t{median_time(fn):.9f}", flush=True)
print(f"# s3 body {len(s3_raw)} B, gradient {len(grad_bytes)} B, base64 body {len(b64_raw)} B", file=sys.stderr)
