"""@com_google_protobuf backed by Debian's protoc, libprotobuf and well-known .proto files."""

def _system_protobuf_impl(ctx):
    for f in ["any", "descriptor", "empty", "timestamp", "duration", "struct", "wrappers"]:
        ctx.symlink("/usr/include/google/protobuf/%s.proto" % f, "google/protobuf/%s.proto" % f)
    ctx.file("protoc.sh", "#!/bin/sh\nexec /usr/bin/protoc \"$@\"\n", executable = True)
    ctx.symlink(ctx.attr.build_file, "BUILD.bazel")

system_protobuf = repository_rule(
    implementation = _system_protobuf_impl,
    attrs = {"build_file": attr.label(allow_single_file = True)},
    local = True,
)
