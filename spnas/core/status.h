// Status and StatusOr: the error type used across config, registry, I/O and trial boundaries.
#ifndef SPNAS_CORE_STATUS_H_
#define SPNAS_CORE_STATUS_H_

#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace spnas {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kOutOfRange,
  kInternal,
  kAborted,
  // The storage is full or refuses to grow (ENOSPC, EDQUOT, EFBIG): the run stops, rather than
  // recording the trials that could not be saved as failed.
  kResourceExhausted,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

// Builds a message from streamable parts: InvalidArgumentError("bad value ", x).
template <typename... Parts>
std::string StrCat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <typename... Parts>
Status InvalidArgumentError(const Parts&... parts) {
  return Status(StatusCode::kInvalidArgument, StrCat(parts...));
}
template <typename... Parts>
Status NotFoundError(const Parts&... parts) {
  return Status(StatusCode::kNotFound, StrCat(parts...));
}
template <typename... Parts>
Status AlreadyExistsError(const Parts&... parts) {
  return Status(StatusCode::kAlreadyExists, StrCat(parts...));
}
template <typename... Parts>
Status FailedPreconditionError(const Parts&... parts) {
  return Status(StatusCode::kFailedPrecondition, StrCat(parts...));
}
template <typename... Parts>
Status InternalError(const Parts&... parts) {
  return Status(StatusCode::kInternal, StrCat(parts...));
}
template <typename... Parts>
Status AbortedError(const Parts&... parts) {
  return Status(StatusCode::kAborted, StrCat(parts...));
}
template <typename... Parts>
Status ResourceExhaustedError(const Parts&... parts) {
  return Status(StatusCode::kResourceExhausted, StrCat(parts...));
}

// `status` with "<context>: " before its message (OK stays OK).
Status Annotate(const Status& status, const std::string& context);

// Writes "value() of a StatusOr holding an error: <status>" to stderr and aborts.
[[noreturn]] void DieOnValueOfError(const Status& status);

// An exception's message without the C++ backtrace LibTorch appends to its errors. The whole
// text, backtrace included, goes to the backtrace sink.
std::string ExceptionMessage(const std::exception& e);

// Where ExceptionMessage sends what it strips: the run's log file while one is open (RunLogFile
// sets it); nowhere when `sink` is empty.
void SetBacktraceSink(std::function<void(const std::string&)> sink);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) {  // NOLINT: implicit like absl
    if (status_.ok()) status_ = InternalError("StatusOr constructed from an OK status without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // The value; on an error the program stops with the status message (as absl's does), so a
  // missed check is a clear report, never undefined behaviour.
  T& value() & { return CheckedValue(); }
  const T& value() const& { return const_cast<StatusOr*>(this)->CheckedValue(); }
  T&& value() && { return std::move(CheckedValue()); }
  T* operator->() { return &CheckedValue(); }
  const T* operator->() const { return &const_cast<StatusOr*>(this)->CheckedValue(); }
  T& operator*() { return CheckedValue(); }
  const T& operator*() const { return const_cast<StatusOr*>(this)->CheckedValue(); }

 private:
  T& CheckedValue() {
    if (!value_.has_value()) DieOnValueOfError(status_);
    return *value_;
  }

  Status status_;
  std::optional<T> value_;
};

// The value, or a std::invalid_argument with the status message: for code that reports errors
// by exception (module constructors, training loops); Registry::Create and the trial runner
// turn it back into an error status.
template <typename T>
T ValueOrThrow(StatusOr<T> status_or) {
  if (!status_or.ok()) throw std::invalid_argument(status_or.status().message());
  return std::move(status_or).value();
}

}  // namespace spnas

#define SPNAS_CONCAT_INNER_(a, b) a##b
#define SPNAS_CONCAT_(a, b) SPNAS_CONCAT_INNER_(a, b)

#define SPNAS_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::spnas::Status spnas_status_ = (expr);        \
    if (!spnas_status_.ok()) return spnas_status_; \
  } while (0)

#define SPNAS_ASSIGN_OR_RETURN(lhs, expr) \
  SPNAS_ASSIGN_OR_RETURN_IMPL_(SPNAS_CONCAT_(spnas_statusor_, __LINE__), lhs, expr)
#define SPNAS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#endif  // SPNAS_CORE_STATUS_H_
