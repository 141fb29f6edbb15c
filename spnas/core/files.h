// File helpers: atomic writes (temporary file + rename) and whole-file reads.
#ifndef SPNAS_CORE_FILES_H_
#define SPNAS_CORE_FILES_H_

#include <string>

#include "spnas/core/status.h"

namespace spnas {

StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` so that a reader (or a crash) sees the old file or the new one,
// never a partial one: write to "<path>.tmp.<pid>", flush, then rename over `path`.
Status WriteFileAtomic(const std::string& path, const std::string& contents);

// Renames `from` to `to`, replacing `to`; both must be on the same file system.
Status RenameFile(const std::string& from, const std::string& to);

// Creates `dir` and its parents.
Status MakeDirs(const std::string& dir);

// Resolves a user-given path: relative paths are taken from the directory the user ran the
// command in (BUILD_WORKING_DIRECTORY under `bazel run`, else the current directory).
std::string ResolveUserPath(const std::string& path);

}  // namespace spnas

#endif  // SPNAS_CORE_FILES_H_
