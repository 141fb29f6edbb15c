"""Binds Debian's system libraries and checks that their versions are the ones we build against.

A version mismatch fails at analysis time with the package name and the version found,
before any compile action runs.
"""

def _dpkg_version(ctx, package):
    res = ctx.execute(["dpkg-query", "-W", "-f=${Version}", package])
    if res.return_code != 0:
        fail("Debian package '%s' is not installed: run tools/setup.sh" % package)
    return res.stdout.strip()

def _upstream(version):
    # "1:1.2.13.dfsg-1" -> "1.2.13.dfsg"; "1.13.1+dfsg-4" -> "1.13.1+dfsg"
    if ":" in version:
        version = version.split(":", 1)[1]
    return version.rsplit("-", 1)[0]

def _system_libs_impl(ctx):
    for package, prefix in ctx.attr.versions.items():
        found = _dpkg_version(ctx, package)
        if not _upstream(found).startswith(prefix):
            fail("Debian package '%s' has version %s; spnas is built against %s.x. " % (package, found, prefix) +
                 "Install the Debian 12 (bookworm) version.")
    ctx.symlink("/usr/include", "include")
    ctx.symlink(ctx.attr.build_file, "BUILD.bazel")

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        "versions": attr.string_dict(doc = "Debian package -> expected upstream version prefix"),
        "build_file": attr.label(allow_single_file = True),
    },
    local = True,
)
