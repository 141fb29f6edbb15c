#include "spnas/core/status.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace spnas {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

std::ostream& operator<<(std::ostream& os, const Status& status) { return os << status.ToString(); }

Status Annotate(const Status& status, const std::string& context) {
  if (status.ok()) return status;
  return Status(status.code(), context + ": " + status.message());
}

void DieOnValueOfError(const Status& status) {
  std::fprintf(stderr, "value() of a StatusOr holding an error: %s\n", status.ToString().c_str());
  std::fflush(stderr);
  std::abort();
}

namespace {

std::mutex backtrace_sink_mutex;
std::function<void(const std::string&)> backtrace_sink;

}  // namespace

void SetBacktraceSink(std::function<void(const std::string&)> sink) {
  const std::lock_guard<std::mutex> lock(backtrace_sink_mutex);
  backtrace_sink = std::move(sink);
}

std::string ExceptionMessage(const std::exception& e) {
  std::string message = e.what();
  const size_t backtrace = message.find("\nException raised from ");
  if (backtrace == std::string::npos) return message;
  {
    const std::lock_guard<std::mutex> lock(backtrace_sink_mutex);
    if (backtrace_sink) backtrace_sink(message);
  }
  message.resize(backtrace);
  return message;
}

}  // namespace spnas
