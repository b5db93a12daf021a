"""Checks that the Kubernetes manifests of deploy/kubernetes agree with each other and with the Dockerfile.

Usage: python check_manifests.py DOCKERFILE MANIFEST...

kubernetes-validate checks each resource against the API's schemas; this checks what no schema can: the Service and
the HorizontalPodAutoscaler find the Deployment, the probes ask the server's health routes on the image's port, the
pods run as the image's user on a read-only root, and the grace period outlasts the preStop sleep and the drain.
Prints one line per failed check and exits 1 when any failed.
"""

import re
import sys

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def main():
    dockerfile, *manifests = sys.argv[1:]
    text = open(dockerfile).read()
    user = re.search(r"^USER\s+(\d+)(?::(\d+))?\s*$", text, re.MULTILINE)
    exposed = re.search(r"^EXPOSE\s+(\d+)", text, re.MULTILINE)
    check(user is not None, "the Dockerfile's USER is not a numeric uid[:gid]")
    check(exposed is not None, "the Dockerfile EXPOSEs no port")

    resources = {}
    for path in manifests:
        for document in yaml.safe_load_all(open(path)):
            if document:
                resources[document["kind"]] = document
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
        check(kind in resources, f"no {kind} among the manifests")
    if failures:
        return
    deployment, service, hpa = resources["Deployment"], resources["Service"], resources["HorizontalPodAutoscaler"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    check(spec["selector"]["matchLabels"].items() <= labels.items(), "the Deployment's selector misses its pods")
    check(service["spec"]["selector"].items() <= labels.items(), "the Service's selector misses the pods")
    target = hpa["spec"]["scaleTargetRef"]
    check(
        target["kind"] == "Deployment" and target["name"] == deployment["metadata"]["name"],
        "the HorizontalPodAutoscaler scales another object",
    )
    check(
        any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]),
        "the HorizontalPodAutoscaler does not scale on CPU",
    )

    containers = pod["containers"]
    check(len(containers) == 1, "the pod should have one container")
    container = containers[0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if exposed:
        check(int(exposed.group(1)) in ports.values(), "no container port is the image's EXPOSEd port")
    for entry in service["spec"]["ports"]:
        port = entry["targetPort"]
        check(port in ports or port in ports.values(), f"the Service's targetPort {port} is no container port")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"the {probe} does not ask {path}")
        check(get.get("port") in ports or get.get("port") in ports.values(), f"the {probe} asks no container port")

    context = pod.get("securityContext", {})
    check(context.get("runAsNonRoot") is True, "the pod may run as root (runAsNonRoot)")
    if user:
        check(context.get("runAsUser") == int(user.group(1)), "the pod's runAsUser is not the image's USER")
    own = container.get("securityContext", {})
    check(own.get("readOnlyRootFilesystem") is True, "the root file system is writable")
    check(own.get("allowPrivilegeEscalation") is False, "privilege escalation is allowed")

    environment = {e["name"]: e.get("value") for e in container.get("env", [])}
    drain = float(environment.get("ADJOINT_DRAIN_TIMEOUT") or 30)
    sleep = 0.0
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(command) == 2 and command[0].endswith("sleep"):
        sleep = float(command[1])
    check(sleep > 0, "no preStop sleep: new requests may still be routed to a pod after its SIGTERM")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > sleep + drain, f"terminationGracePeriodSeconds {grace} <= preStop {sleep} s + drain {drain} s")

    resources_ = container.get("resources", {})
    for part in ("requests", "limits"):
        for name in ("cpu", "memory"):
            check(name in resources_.get(part, {}), f"no {name} in the container's {part}")
    workers = environment.get("ADJOINT_WORKERS")
    limit = str(resources_.get("limits", {}).get("cpu", ""))
    if workers and re.fullmatch(r"\d+", limit):
        check(int(workers) <= int(limit), "more ADJOINT_WORKERS than CPUs in the limit")


if __name__ == "__main__":
    main()
    for failure in failures:
        print(f"check_manifests: {failure}")
    sys.exit(1 if failures else 0)
