#include "spnas/core/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "spnas/core/logging.h"

namespace spnas {
namespace {

std::string Contents(int fd) {
  std::string text(512, '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

std::string Holder() {
  char host[256] = "unknown";
  gethostname(host, sizeof(host) - 1);
  char started[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return StrCat("pid ", getpid(), " on ", host, ", started ", started, "\n");
}

}  // namespace

StatusOr<std::unique_ptr<RunLock>> RunLock::Acquire(const std::string& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  const std::string path = (std::filesystem::path(folder) / ".run.lock").string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return FailedPreconditionError("cannot open the run lock ", path, ": ", std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = Contents(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return FailedPreconditionError("the run folder ", folder, " is in use by another spnas run (",
                                     holder.empty() ? "holder unknown" : holder, "; lock ", path,
                                     "). Wait for it to end, or use another --local_base_path.");
    }
    return FailedPreconditionError("cannot lock ", path, ": ", std::strerror(error));
  }
  const std::string stale = Contents(fd);
  if (!stale.empty()) {
    LOG(WARNING) << "the previous run in " << folder << " (" << stale
                 << ") ended without releasing its lock (a crash or a kill); its finished work is kept";
  }
  const std::string holder = Holder();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    LOG(WARNING) << "cannot write the run lock " << path << ": " << std::strerror(errno);
  }
  return std::unique_ptr<RunLock>(new RunLock(fd));
}

RunLock::~RunLock() {
  if (ftruncate(fd_, 0) != 0) LOG(WARNING) << "cannot empty the run lock: " << std::strerror(errno);
  flock(fd_, LOCK_UN);
  close(fd_);
}

}  // namespace spnas
