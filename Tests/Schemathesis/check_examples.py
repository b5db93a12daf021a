"""Validates every example of an OpenAPI 3.1 document against the schema it illustrates.

Usage: python check_examples.py openapi.yaml

openapi-spec-validator checks the document's structure but not that its examples fit their schemas; this does, for
the examples of media types (requests and responses), parameters and schemas. Prints one line per mistake and
exits 1 when there is one, else prints the count of examples checked.
"""

import sys

import jsonschema
import yaml


def examples_of(node):
    """The examples of a media type, parameter or schema object: `example` and each `examples.*.value`."""
    if "example" in node:
        yield "example", node["example"]
    for name, example in (node.get("examples") or {}).items():
        if isinstance(example, dict) and "value" in example:
            yield f"examples/{name}", example["value"]


def walk(node, pointer):
    """Yields (pointer, schema, example) for every example in the document."""
    if isinstance(node, dict):
        schema = node.get("schema")
        if isinstance(schema, dict):
            for where, example in examples_of(node):
                yield f"{pointer}/{where}", schema, example
        if pointer.startswith("/components/schemas/") and pointer.count("/") == 3:
            for where, example in examples_of(node):
                yield f"{pointer}/{where}", node, example
        for key, value in node.items():
            if key in ("example", "examples"):
                continue
            yield from walk(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def main(path):
    with open(path, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    mistakes = 0
    checked = 0
    for pointer, schema, example in walk(document, ""):
        # `#/components/...` references resolve against the root of the schema being validated.
        rooted = dict(schema, components=document.get("components", {}))
        validator = jsonschema.Draft202012Validator(rooted)
        checked += 1
        for error in validator.iter_errors(example):
            mistakes += 1
            print(f"{path}#{pointer}: {error.message} (at {'/'.join(map(str, error.absolute_path)) or 'the root'})")
    if checked == 0:
        print(f"{path}: no example found")
        return 1
    print(f"{path}: {checked} examples fit their schemas" if mistakes == 0 else f"{path}: {mistakes} mistakes")
    return 1 if mistakes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
