#!/bin/bash
# Bazel's workspace status (--workspace_status_command): the commit the build is made from,
# with "-dirty" when the working tree has uncommitted changes; "unknown" outside a git checkout.
commit=$(git rev-parse HEAD 2>/dev/null) || commit=unknown
if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD 2>/dev/null; then commit="$commit-dirty"; fi
echo "STABLE_GIT_COMMIT $commit"
