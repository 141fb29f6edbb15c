"""Debian's rules_cc 0.0.4, made loadable by Bazel 4.2.3.

rules_cc 0.0.4 asks @bazel_tools for `use_cpp_toolchain`, which Bazel 4.2.3 lacks.
We copy the package into the external repository (never editing /usr/share) and
replace that call with the toolchain type it stands for.
"""

_PATCHED = [
    "cc/private/rules_impl/compiler_flag.bzl",
    "cc/private/rules_impl/cc_flags_supplier.bzl",
]

def _debian_rules_cc_impl(ctx):
    src = ctx.attr.path
    if not ctx.path(src).exists:
        fail("rules_cc not found at %s: install Debian's bazel-rules-cc (tools/setup.sh)" % src)
    res = ctx.execute(["cp", "-r", "--no-preserve=mode", src + "/.", "."])
    if res.return_code != 0:
        fail("copying rules_cc failed: " + res.stderr)
    for f in _PATCHED:
        text = ctx.read(f)
        text = text.replace(', "use_cpp_toolchain")', ")")
        text = text.replace("use_cpp_toolchain()", '["@bazel_tools//tools/cpp:toolchain_type"]')
        ctx.file(f, text)

debian_rules_cc = repository_rule(
    implementation = _debian_rules_cc_impl,
    attrs = {"path": attr.string(default = "/usr/share/bazel/rules/cc")},
    local = True,
)
