#include "spnas/core/files.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace spnas {

namespace fs = std::filesystem;

namespace {

Status WriteError(const std::string& path, int error) {
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) {
    return ResourceExhaustedError("Cannot write '", path, "': ", std::strerror(error),
                                  ". Free some space, then continue the run with --resume: every finished "
                                  "record is kept.");
  }
  return InternalError("Cannot write '", path, "': ", std::strerror(error));
}

}  // namespace

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("Cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return WriteError(tmp, errno);
  int error = 0;
  if (std::fwrite(contents.data(), 1, contents.size(), f) != contents.size()) {
    error = errno;
  } else if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
    error = errno;
  }
  if (std::fclose(f) != 0 && error == 0) error = errno;
  if (error != 0) {
    std::remove(tmp.c_str());  // no partial file is left behind
    return WriteError(path, error);
  }
  return RenameFile(tmp, path);
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return InternalError("Cannot rename '", from, "' to '", to, "': ", std::strerror(errno));
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return WriteError(dir, ec.value());  // a full disk stops the run, as for files
  return Status::Ok();
}

std::string ResolveUserPath(const std::string& path) {
  if (path.empty()) return path;
  if (fs::path(path).is_absolute()) return fs::path(path).lexically_normal().string();
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  const fs::path base = (cwd != nullptr && *cwd != '\0') ? fs::path(cwd) : fs::current_path();
  return (base / path).lexically_normal().string();
}

}  // namespace spnas
