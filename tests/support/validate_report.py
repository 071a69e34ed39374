#!/usr/bin/env python3
"""Validate a trainmeter report (or every line-object of a list of files) against the JSON Schema.

usage: validate_report.py SCHEMA.json REPORT.json [REPORT.json ...]
Exit 0 when every report is valid; otherwise prints the first error of each invalid one, exit 1.
Uses python3-jsonschema, an implementation independent of trainmeter's own validator.
"""
import json
import sys

import jsonschema


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    bad = 0
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            bad += 1
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            print(f"{path}: {where}: {e.message}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
