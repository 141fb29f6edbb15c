// The log of a run in a file: while a RunLogFile lives, every log line also goes to its file
// (appended), in glog's format, besides stderr, and so do the C++ backtraces that
// ExceptionMessage keeps from the user's terminal.
#ifndef SPNAS_CORE_RUN_LOG_H_
#define SPNAS_CORE_RUN_LOG_H_

#include <fstream>
#include <mutex>
#include <string>

#include "spnas/core/logging.h"
#include "spnas/core/status.h"

namespace spnas {

class RunLogFile : public google::LogSink {
 public:
  explicit RunLogFile(const std::string& path);
  ~RunLogFile() override;
  RunLogFile(const RunLogFile&) = delete;
  RunLogFile& operator=(const RunLogFile&) = delete;

  void send(google::LogSeverity severity, const char* full_filename, const char* base_filename, int line,
            const google::LogMessageTime& time, const char* message, size_t message_len) override;

 private:
  std::mutex mutex_;
  std::ofstream out_;
};

}  // namespace spnas

#endif  // SPNAS_CORE_RUN_LOG_H_
