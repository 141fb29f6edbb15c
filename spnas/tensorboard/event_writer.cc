#include "spnas/tensorboard/event_writer.h"

#include <isa-l/crc.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "spnas/core/files.h"
#include "spnas/tensorboard/event.pb.h"

namespace spnas::tensorboard {

namespace {

double WallTime() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

void AppendLittleEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

uint32_t MaskedCrc32c(std::string_view data) {
  // ISA-L's iSCSI CRC is CRC-32C; the standard value starts from and ends with all ones.
  const uint32_t crc = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(data.data())),
                                   static_cast<int>(data.size()), 0xffffffffu) ^
                       0xffffffffu;
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string FrameRecord(std::string_view data) {
  std::string length;
  AppendLittleEndian(&length, data.size(), 8);
  std::string frame = length;
  AppendLittleEndian(&frame, MaskedCrc32c(length), 4);
  frame.append(data);
  AppendLittleEndian(&frame, MaskedCrc32c(data), 4);
  return frame;
}

StatusOr<std::unique_ptr<EventWriter>> EventWriter::Open(const std::string& dir) {
  SPNAS_RETURN_IF_ERROR(MakeDirs(dir));
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  // TensorBoard finds files by the "tfevents" in their name and orders them by the time.
  const std::string path =
      (std::filesystem::path(dir) /
       StrCat("events.out.tfevents.", static_cast<int64_t>(WallTime()), ".", host, ".", ::getpid()))
          .string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InternalError("cannot write the TensorBoard event file '", path, "'");
  std::unique_ptr<EventWriter> writer(new EventWriter(path, std::move(out)));
  Event version;
  version.set_wall_time(WallTime());
  version.set_file_version("brain.Event:2");
  SPNAS_RETURN_IF_ERROR(writer->Write(version.SerializeAsString()));
  return writer;
}

Status EventWriter::AddScalar(const std::string& tag, double value, int64_t step) {
  Event event;
  event.set_wall_time(WallTime());
  event.set_step(step);
  Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  return Write(event.SerializeAsString());
}

Status EventWriter::AddText(const std::string& tag, const std::string& text, int64_t step) {
  Event event;
  event.set_wall_time(WallTime());
  event.set_step(step);
  Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  TensorProto* tensor = v->mutable_tensor();
  tensor->set_dtype(7);  // DT_STRING
  tensor->mutable_tensor_shape()->add_dim()->set_size(1);
  tensor->add_string_val(text);
  return Write(event.SerializeAsString());
}

Status EventWriter::Write(const std::string& serialized_event) {
  const std::string frame = FrameRecord(serialized_event);
  out_.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  out_.flush();
  if (!out_) return InternalError("cannot write the TensorBoard event file '", path_, "'");
  return Status::Ok();
}

}  // namespace spnas::tensorboard
