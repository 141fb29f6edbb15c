#!/usr/bin/env python3
"""Checks the "// default V" comments of the options protos against the defaults the plugins
set (SetDefaults, as `spnas list` shows them): the comments document the code, they are not a
second source. Usage: tools/check_defaults.py SPNAS_BINARY PROTO...
"""
import math
import re
import subprocess
import sys

FIELD = re.compile(r"^\s*(optional|repeated)\s+\w+\s+(\w+)\s*=\s*\d+\s*;\s*//\s*default\s+([^:].*)$")
VALUE = re.compile(r'^(\[[^\]]*\]|"[^"]*"|[-+0-9.eE]+)')


def listed_defaults(binary):
    """options type -> {field: [values]} from the top-level fields of `spnas list`'s defaults."""
    out = subprocess.run([binary, "list"], capture_output=True, text=True, check=True).stdout
    defaults, options_type = {}, None
    for line in out.splitlines():
        m = re.search(r"\(options: ([\w.]+)\)", line)
        if m:
            options_type = m.group(1)
            continue
        m = re.match(r"\s+defaults: (.*)$", line)
        if m and options_type:
            text, depth, fields = m.group(1), 0, {}
            for token in re.finditer(r'(\w+): ("[^"]*"|[^\s{}]+)|([{}])', text):
                if token.group(3):
                    depth += 1 if token.group(3) == "{" else -1
                elif depth == 0:
                    fields.setdefault(token.group(1), []).append(token.group(2))
            defaults.setdefault(options_type, fields)
    return defaults


def same(documented, actual):
    if documented.startswith('"'):
        return documented == actual
    try:
        a, b = float(documented), float(actual)
    except ValueError:
        return documented == actual
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def main():
    binary, protos = sys.argv[1], sys.argv[2:]
    defaults = listed_defaults(binary)
    problems, checked = [], 0
    for proto in protos:
        message = None
        for number, line in enumerate(open(proto), 1):
            m = re.match(r"^message (\w+) \{", line)
            if m:
                message = m.group(1)
            m = FIELD.match(line)
            if not m or message is None:
                continue
            value = VALUE.match(m.group(3).strip())
            if not value:
                continue  # prose ("the whole split", "FashionMnist train")
            documented = value.group(1)
            if documented.startswith("["):
                documented_values = [v.strip() for v in documented[1:-1].split(",") if v.strip()]
            else:
                documented_values = [documented]
            listed = defaults.get(f"spnas.{message}")
            if listed is None:
                continue  # not a plugin's options (e.g. a search algorithm's own defaults)
            actual = listed.get(m.group(2), [])
            checked += 1
            if len(actual) != len(documented_values) or not all(map(same, documented_values, actual)):
                problems.append(f"{proto}:{number}: {message}.{m.group(2)} is documented as default "
                                f"{documented} but the plugin sets {actual or 'nothing'}")
    for p in problems:
        print(p)
    print(f"defaults: {checked} documented defaults checked, {len(problems)} wrong")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
