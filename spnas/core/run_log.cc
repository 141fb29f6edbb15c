#include "spnas/core/run_log.h"

#include <filesystem>

namespace spnas {

RunLogFile::RunLogFile(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  out_.open(path, std::ios::app);
  if (!out_) {
    LOG(WARNING) << "cannot write the run log " << path << "; logging to stderr only";
    return;
  }
  google::AddLogSink(this);
  // The backtraces of LibTorch's errors go here, not to the user's terminal.
  SetBacktraceSink([this](const std::string& error) {
    const std::lock_guard<std::mutex> lock(mutex_);
    out_ << "(the error's whole text) " << error << '\n';
    out_.flush();
  });
}

RunLogFile::~RunLogFile() {
  if (!out_.is_open()) return;
  SetBacktraceSink(nullptr);
  google::RemoveLogSink(this);
}

void RunLogFile::send(google::LogSeverity severity, const char*, const char* base_filename, int line,
                      const google::LogMessageTime& time, const char* message, size_t message_len) {
  const std::lock_guard<std::mutex> lock(mutex_);
  out_ << ToString(severity, base_filename, line, time, message, message_len) << '\n';
  out_.flush();  // a killed run keeps its log up to the last line
}

}  // namespace spnas
