// The TensorBoard event writer's framing: CRC-32C against its published check value, and the
// records of a written file read back frame by frame. tests/tensorboard_test.sh reads a trial's
// files with TensorBoard's own reader.
#include "spnas/tensorboard/event_writer.h"

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "spnas/core/files.h"
#include "spnas/tensorboard/event.pb.h"

namespace spnas::tensorboard {
namespace {

uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

uint64_t LittleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t value = 0;
  for (int i = n - 1; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

TEST(TensorBoardTest, Crc32cMatchesTheCheckValue) {
  EXPECT_EQ(MaskedCrc32c("123456789"), Mask(0xe3069283u));  // CRC-32C("123456789"), RFC 3720
  EXPECT_EQ(MaskedCrc32c(""), Mask(0u));
}

TEST(TensorBoardTest, WritesFramedEventsThatParseBack) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/tb";
  auto writer = EventWriter::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_NE((*writer)->path().find("/events.out.tfevents."), std::string::npos);
  ASSERT_TRUE((*writer)->AddScalar("train/loss", 1.5, 10).ok());
  ASSERT_TRUE((*writer)->AddText("model", "SerialBackbone 11-21", 0).ok());

  const std::string bytes = *ReadFile((*writer)->path());
  std::vector<Event> events;
  for (size_t at = 0; at < bytes.size();) {
    ASSERT_LE(at + 12, bytes.size());
    const uint64_t length = LittleEndian(bytes, at, 8);
    EXPECT_EQ(LittleEndian(bytes, at + 8, 4), MaskedCrc32c(bytes.substr(at, 8)));
    ASSERT_LE(at + 12 + length + 4, bytes.size());
    const std::string data = bytes.substr(at + 12, length);
    EXPECT_EQ(LittleEndian(bytes, at + 12 + length, 4), MaskedCrc32c(data));
    ASSERT_TRUE(events.emplace_back().ParseFromString(data));
    at += 12 + length + 4;
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[1].step(), 10);
  EXPECT_EQ(events[1].summary().value(0).tag(), "train/loss");
  EXPECT_FLOAT_EQ(events[1].summary().value(0).simple_value(), 1.5f);
  EXPECT_EQ(events[2].summary().value(0).metadata().plugin_data().plugin_name(), "text");
  EXPECT_EQ(events[2].summary().value(0).tensor().string_val(0), "SerialBackbone 11-21");
}

}  // namespace
}  // namespace spnas::tensorboard
