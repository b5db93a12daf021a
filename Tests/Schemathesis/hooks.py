"""Checks of the wire contract that openapi.yaml cannot state, added to schemathesis's own by scripts/schemathesis."""

import os
import re

import requests
import schemathesis

COMPUTE_PATHS = {"/evaluate", "/gradient", "/vjp", "/jvp", "/jacobian", "/hessian", "/gradcheck"}
OPEN_PATHS = {"/healthz", "/readyz", "/openapi.yaml"}

# The bearer token the server was started with (scripts/schemathesis sets it and sends it with every request).
TOKEN = os.environ.get("ADJOINT_TEST_TOKEN", "")

# A sane request id, which the server must echo: 1 to 128 visible ASCII characters.
SANE_REQUEST_ID = re.compile(r"[!-~]{1,128}")


@schemathesis.hook
def map_body(context, body):
    """Turns two generated compute requests in three into ones whose function fits their point.

    Left alone, nearly every generated `expr` is a syntax error and the math behind it is never reached. So, when the
    body names its point with `at` or `batch`, the inputs are renamed `x0`, `x1`, ... (in `at`, every point of
    `batch`, `tangent` and `wrt`) and `expr` becomes `y = sum(x0) + sum(x1) + ...`, which is defined for tensors of
    any shape: the generated tensors (any form, NaN strings, any layout) then go through the forward and backward
    passes. Which requests keep their generated `expr` is decided by its length, so a run stays repeatable.
    """
    operation = getattr(context, "operation", None)
    if operation is None or operation.path not in COMPUTE_PATHS or not isinstance(body, dict):
        return body
    expr = body.get("expr")
    if not isinstance(expr, str) or len(expr) % 3 == 0:
        return body
    points = [body["at"]] if isinstance(body.get("at"), dict) else []
    if isinstance(body.get("batch"), list):
        points += [point for point in body["batch"] if isinstance(point, dict)]
    if not points:
        return body
    names = {}
    for point in points:
        for name in point:
            names.setdefault(name, f"x{len(names)}")
    body = dict(body)

    def renamed(point):
        return {names[name]: value for name, value in point.items()}

    if isinstance(body.get("at"), dict):
        body["at"] = renamed(body["at"])
    if isinstance(body.get("batch"), list):
        body["batch"] = [renamed(point) if isinstance(point, dict) else point for point in body["batch"]]
    if isinstance(body.get("tangent"), dict):
        inputs = list(names.values()) or ["x0"]
        body["tangent"] = {inputs[i % len(inputs)]: value for i, value in enumerate(body["tangent"].values())}
    if isinstance(body.get("wrt"), list) and names:
        inputs = list(names.values())
        body["wrt"] = [inputs[i % len(inputs)] for i in range(len(body["wrt"]))]
    body["expr"] = "y = " + (" + ".join(f"sum({name})" for name in names.values()) or "1")
    return body


def _json(response):
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - a body that is not JSON is schemathesis's own check to report
        return None


@schemathesis.check
def not_found_only_for_graph_id(ctx, response, case):
    """A compute route answers 404 only to a request that names a `graph_id`, pointing at `/graph_id`.

    Anything else would be the route itself missing, which the 404 documented for unknown graph ids would hide.
    """
    if case.operation.path not in COMPUTE_PATHS or response.status_code != 404:
        return None
    if not (isinstance(case.body, dict) and "graph_id" in case.body):
        raise AssertionError(f"404 from {case.operation.path} for a request without 'graph_id': is the route missing?")
    problem = _json(response)
    pointers = [entry.get("pointer") for entry in (problem or {}).get("errors", []) if isinstance(entry, dict)]
    if "/graph_id" not in pointers:
        raise AssertionError(f"a 404 for an unknown graph id must point at /graph_id, found {pointers}")
    return None


@schemathesis.check
def request_id_echoed(ctx, response, case):
    """A sane client `X-Request-Id` comes back unchanged, and any other is replaced by a sane one."""
    sent = next((v for k, v in (case.headers or {}).items() if k.lower() == "x-request-id"), None)
    echoed = response.headers.get("x-request-id") or []
    if len(echoed) != 1:
        raise AssertionError(f"the response carries {len(echoed)} X-Request-Id fields, not one")
    if isinstance(sent, str) and SANE_REQUEST_ID.fullmatch(sent):
        if echoed[0] != sent:
            raise AssertionError(f"X-Request-Id {sent!r} was sent, {echoed[0]!r} came back")
    elif not SANE_REQUEST_ID.fullmatch(echoed[0]):
        raise AssertionError(f"the generated X-Request-Id {echoed[0]!r} is not sane")
    return None


@schemathesis.check
class every_operation_succeeds:  # noqa: N801 - the class name is the check's name on the command line
    """Every operation tested answers 2xx at least once over the run (its examples are valid requests)."""

    def __init__(self):
        self.tested = set()
        self.succeeded = set()

    def after_response(self, ctx, response, case):
        label = case.operation.label
        self.tested.add(label)
        if 200 <= response.status_code < 300:
            self.succeeded.add(label)

    def after_run(self, ctx):
        never = sorted(self.tested - self.succeeded)
        if never:
            raise AssertionError("never answered 2xx: " + ", ".join(never))


@schemathesis.check
class auth_enforced:  # noqa: N801 - the class name is the check's name on the command line
    """With API keys configured, each operation that answered 2xx with the token is sent again without it and with a
    wrong one: 401 with `WWW-Authenticate: Bearer` both times, except `/healthz`, `/readyz` and `/openapi.yaml`,
    which stay open. Probed once per operation; a no-op when ADJOINT_TEST_TOKEN is not set."""

    def __init__(self):
        self.probed = set()

    def after_response(self, ctx, response, case):
        if not TOKEN or not 200 <= response.status_code < 300 or case.operation.label in self.probed:
            return None
        self.probed.add(case.operation.label)
        for authorization in (None, "Bearer not-" + TOKEN):
            probe = response.request.copy()
            probe.headers.pop("Authorization", None)
            if authorization:
                probe.headers["Authorization"] = authorization
            with requests.Session() as session:
                answer = session.send(probe, timeout=30)
            shown = f"{probe.method} {probe.path_url} with {authorization or 'no token'}"
            if case.operation.path in OPEN_PATHS:
                if answer.status_code != response.status_code:
                    raise AssertionError(f"{shown}: {answer.status_code}, but this route is open")
            elif answer.status_code != 401:
                raise AssertionError(f"{shown}: {answer.status_code}, not 401")
            elif not answer.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                raise AssertionError(f"{shown}: 401 without 'WWW-Authenticate: Bearer'")
        return None
