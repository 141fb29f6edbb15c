// Writes TensorBoard event files (events.out.tfevents.*) from C++: scalars and text, one
// record per event, framed as TFRecord (length, masked CRC-32C of the length, data, masked
// CRC-32C of the data) so that TensorBoard's own reader loads them.
#ifndef SPNAS_TENSORBOARD_EVENT_WRITER_H_
#define SPNAS_TENSORBOARD_EVENT_WRITER_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "spnas/core/status.h"

namespace spnas::tensorboard {

// CRC-32C of `data`, masked as TFRecord stores it (rotated, plus a constant) so that a CRC of
// data containing CRCs stays well distributed.
uint32_t MaskedCrc32c(std::string_view data);

// One TFRecord frame around `data`.
std::string FrameRecord(std::string_view data);

class EventWriter {
 public:
  // Creates `dir` and a new event file in it, named as TensorBoard expects.
  static StatusOr<std::unique_ptr<EventWriter>> Open(const std::string& dir);

  const std::string& path() const { return path_; }
  // Each event is flushed as written: a run killed in the middle keeps its curves.
  Status AddScalar(const std::string& tag, double value, int64_t step);
  Status AddText(const std::string& tag, const std::string& text, int64_t step);

 private:
  EventWriter(std::string path, std::ofstream out) : path_(std::move(path)), out_(std::move(out)) {}
  Status Write(const std::string& serialized_event);

  std::string path_;
  std::ofstream out_;
};

}  // namespace spnas::tensorboard

#endif  // SPNAS_TENSORBOARD_EVENT_WRITER_H_
