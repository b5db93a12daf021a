"""Writes the request and response examples of openapi.yaml's compute and graph routes as one JSON document.

Usage: python3 extract_examples.py ../../../openapi.yaml > openapi-examples.json

The SDK's tests decode every response example with the SDK's wire types and send every request example through
them; they also run this script (when Python and PyYAML are there) and fail when its output differs from the
checked-in fixture, so the two cannot drift apart.
"""

import json
import sys

import yaml


def named_examples(media):
    if "example" in media:
        yield "example", media["example"]
    for name, example in (media.get("examples") or {}).items():
        if isinstance(example, dict) and "value" in example:
            yield name, example["value"]


def main(path):
    with open(path, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    out = []
    for route, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            media = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            for name, value in named_examples(media or {}):
                out.append({"route": route, "method": method, "kind": "request", "name": name, "value": value})
            for status, response in operation["responses"].items():
                media = ((response or {}).get("content") or {}).get("application/json")
                for name, value in named_examples(media or {}):
                    out.append({"route": route, "method": method, "kind": "response", "status": int(status),
                                "name": name, "value": value})
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
