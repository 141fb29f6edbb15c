#include "fuzz/fuzz_input.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <ATen/Parallel.h>
#include <glog/logging.h>

namespace spnas::fuzz {

namespace fs = std::filesystem;

void InitQuietly() {
  FLAGS_minloglevel = 3;
  FLAGS_logtostderr = true;
  at::set_num_threads(1);
}

const std::string& ScratchDir() {
  // Never destroyed, so that the exit handler can still read it.
  static const std::string* dir = [] {
    const fs::path root = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path path = root / ("spnas_fuzz_" + std::to_string(getpid()));
    fs::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(ScratchDir(), ignored);
    });
    return new std::string(path.string());
  }();
  return *dir;
}

std::string WriteScratchFile(const std::string& relative_path, std::string_view bytes) {
  const fs::path path = fs::path(ScratchDir()) / relative_path;
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

std::vector<std::string_view> SplitParts(const uint8_t* data, size_t size, size_t max_parts) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSeparator = "\n----\n";
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (parts.size() + 1 < max_parts) {
    const size_t at = all.find(kSeparator, start);
    if (at == std::string_view::npos) break;
    parts.push_back(all.substr(start, at - start));
    start = at + kSeparator.size();
  }
  parts.push_back(all.substr(start));
  return parts;
}

}  // namespace spnas::fuzz
