"""The layers of spnas: which packages each package may use, in one place.

A package may depend on (Bazel deps) and include (#include, proto import) only the packages
listed for it, so the graph is a DAG that reads bottom-up:
core -> device, ops, tensorboard -> models, data -> metrics -> trainers -> callbacks, search, distributed
-> pipeline -> cli.
Every BUILD file takes its visibility from here (users_of), and tools/check_layers.py, run by
tools/test.sh, checks both the Bazel graph and the includes against it.
"""

ALLOWED_DEPS = {
    "core": [],
    "device": ["core"],
    "ops": ["core"],
    "models": ["core", "device", "ops"],
    "data": ["core", "device"],
    "metrics": ["core", "data"],
    "report": ["core"],
    "tensorboard": ["core"],
    "trainers": ["core", "data", "device", "metrics", "models"],
    "callbacks": ["core", "data", "models", "tensorboard", "trainers"],
    "search": ["core", "device", "models"],
    "pipeline": ["core", "report", "search", "trainers"],
    "distributed": ["core", "trainers"],
    "cli": ["core", "data", "device", "distributed", "metrics", "models", "pipeline", "report"],
}

# Code outside the layers that may use any package: the plugin set and binaries, tests,
# benchmarks, examples and tools.
CLIENTS = ["//spnas", "//fuzz/...", "//tests/...", "//benchmarks/...", "//examples/...", "//tools/..."]

def users_of(package):
    """The packages allowed to depend on `package` (for a package_group)."""
    users = ["//spnas/" + user for user in sorted(ALLOWED_DEPS) if package in ALLOWED_DEPS[user]]
    return ["//spnas/" + package] + users + CLIENTS
