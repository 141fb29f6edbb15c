#!/usr/bin/env python3
"""Checks the package graph of spnas against spnas/layers.bzl.

Fails, naming each offence, when
  - a file includes (#include, proto import) a header of a package its own may not use,
  - a Bazel target depends on a target of a package its own may not use (bazel query),
  - a BUILD file makes its targets public by default.
Usage: tools/check_layers.py [--root=DIR] [--no-query]
"""
import argparse
import pathlib
import re
import subprocess
import sys


def load_layers(root):
    scope = {}
    exec((root / "spnas/layers.bzl").read_text(), scope)  # the .bzl is plain Python
    return scope["ALLOWED_DEPS"]


def package_of(path):
    """'spnas/models/necks/fpn.cc' -> 'models'; outside the layers -> None."""
    parts = pathlib.PurePosixPath(path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "spnas" else None


def include_offences(root, allowed):
    include = re.compile(r'^\s*(?:#\s*include|import)\s+"spnas/([a-z_]+)/')
    for path in sorted((root / "spnas").rglob("*")):
        if path.suffix not in (".h", ".cc", ".cu", ".proto") or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        source = package_of(rel)
        if source not in allowed:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = include.match(line)
            if m and m.group(1) != source and m.group(1) not in allowed[source]:
                yield f"{rel}:{number}: {source} may not include {m.group(1)} ({line.strip()})"


def bazel_offences(root, allowed):
    query = "deps(//spnas/..., 1) intersect //spnas/..."
    out = subprocess.run(["bazel", "query", query, "--output=graph", "--nograph:factored"], cwd=root,
                         capture_output=True, text=True)
    if out.returncode != 0:
        yield f"bazel query failed: {out.stderr.strip()[-2000:]}"
        return
    for a, b in re.findall(r'"//([^:"]*):[^"]*"\s*->\s*"//([^:"]*):[^"]*"', out.stdout):
        source, target = package_of(a + "/x"), package_of(b + "/x")
        if source in allowed and target and target != source and target not in allowed[source]:
            yield f"//{a} depends on //{b}: {source} may not use {target}"


def visibility_offences(root):
    for build in sorted(root.rglob("BUILD")):
        rel = build.relative_to(root).as_posix()
        if rel.startswith("bazel-") or rel.startswith("third_party/"):
            continue
        if re.search(r'default_visibility\s*=\s*\[\s*"//visibility:public"', build.read_text()):
            yield f"{rel}: public by default; give the package a package_group (spnas/layers.bzl)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=pathlib.Path(__file__).resolve().parent.parent, type=pathlib.Path)
    parser.add_argument("--no-query", action="store_true", help="skip the Bazel graph (includes and BUILD files only)")
    args = parser.parse_args()
    allowed = load_layers(args.root)
    offences = list(include_offences(args.root, allowed)) + list(visibility_offences(args.root))
    if not args.no_query:
        offences += list(bazel_offences(args.root, allowed))
    for offence in offences:
        print(offence)
    print(f"layers: {len(offences)} offences against spnas/layers.bzl")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main())
