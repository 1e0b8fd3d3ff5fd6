// Unit tests for safetensors validation: good files parse; every hostile variant is rejected
// with an error naming the file and, where there is one, the tensor.
#include <gtest/gtest.h>

#include <span>

#include "core/error.h"
#include "model/safetensors.h"
#include "model_test_util.h"

namespace autoglm {
namespace {

using test::safetensors_bytes;
using test::SafetensorsBuilder;

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Runs the parser and returns the error message ("" if it parsed).
std::string parse_error(const std::string& bytes, ErrorCode* code = nullptr) {
  try {
    parse_safetensors(as_bytes(bytes), "w.safetensors");
  } catch (const Error& e) {
    if (code != nullptr) *code = e.code();
    return e.what();
  }
  return "";
}

SafetensorsBuilder two_tensors() {
  SafetensorsBuilder b;
  b.add("a", "F32", {2, 3});
  b.add("b", "BF16", {4}, 2);
  return b;
}

TEST(Safetensors, ParsesValidFileWithMetadata) {
  SafetensorsBuilder b = two_tensors();
  b.add("c", "F16", {0, 5}, 2);  // zero-size tensors are legal
  b.header()["__metadata__"] = {{"format", "pt"}};
  const std::string bytes = b.build();
  const SafetensorsHeader h = parse_safetensors(as_bytes(bytes), "w.safetensors");
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, DType::kF32);
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[0].element_count, 6u);
  EXPECT_EQ(h.tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.data_start + 24 + 8, bytes.size());
}

TEST(Safetensors, AcceptsTrailingSpacePaddingInHeader) {
  SafetensorsBuilder b = two_tensors();
  const std::string bytes = safetensors_bytes(b.header().dump() + "      ", b.data());
  EXPECT_EQ(parse_error(bytes), "");
}

TEST(Safetensors, RejectsTooShortFile) {
  EXPECT_NE(parse_error("abc").find("too short"), std::string::npos);
  EXPECT_NE(parse_error("").find("w.safetensors"), std::string::npos);
}

TEST(Safetensors, RejectsTruncatedData) {
  std::string bytes = two_tensors().build();
  bytes.resize(bytes.size() - 3);
  const std::string msg = parse_error(bytes);
  EXPECT_NE(msg.find("w.safetensors: tensor 'b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("past the end of the data section"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsHeaderLengthPastEof) {
  std::string bytes = two_tensors().build();
  bytes[0] = static_cast<char>(0xff);
  bytes[1] = static_cast<char>(0x7f);
  EXPECT_NE(parse_error(bytes).find("runs past the end of the file"), std::string::npos);
}

TEST(Safetensors, RejectsHugeHeaderBeforeAllocating) {
  // Claims a 1 TiB header in a 16-byte buffer: must fail on the cap, not try to allocate.
  std::string bytes(16, ' ');
  const uint64_t n = uint64_t{1} << 40;
  for (int i = 0; i < 8; ++i)
    bytes[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  EXPECT_NE(parse_error(bytes).find("exceeds the limit"), std::string::npos);
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(0xff);
  EXPECT_NE(parse_error(bytes).find("exceeds the limit"), std::string::npos);
}

TEST(Safetensors, RejectsNonJsonHeader) {
  EXPECT_NE(parse_error(safetensors_bytes("{\"a\": [1, 2", "")).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes("[1, 2, 3]   ", "")).find("does not start with '{'"),
            std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes("{\"a\": \"\xff\"}", "")).find("w.safetensors"),
            std::string::npos);
}

TEST(Safetensors, RejectsDeepJson) {
  std::string deep = "{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_NE(parse_error(safetensors_bytes(deep, "")).find("nested deeper"), std::string::npos);
}

TEST(Safetensors, RejectsOverlappingOffsets) {
  SafetensorsBuilder b = two_tensors();
  b.header()["b"]["data_offsets"] = {20, 28};
  b.data().resize(28);
  const std::string msg = parse_error(b.build());
  EXPECT_NE(msg.find("tensor 'b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsGapBetweenTensors) {
  SafetensorsBuilder b = two_tensors();
  b.header()["b"]["data_offsets"] = {28, 36};
  b.data().resize(36);
  const std::string msg = parse_error(b.build());
  EXPECT_NE(msg.find("tensor 'b': gap"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsTrailingBytesNotCoveredByTensors) {
  SafetensorsBuilder b = two_tensors();
  b.data() += "xxxx";
  EXPECT_NE(parse_error(b.build()).find("tensors cover only"), std::string::npos);
}

TEST(Safetensors, RejectsOffsetsPastEof) {
  SafetensorsBuilder b = two_tensors();
  b.header()["b"]["data_offsets"] = {24, 1u << 30};
  b.header()["b"]["shape"] = {(1 << 29) - 12};
  const std::string msg = parse_error(b.build());
  EXPECT_NE(msg.find("tensor 'b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("past the end"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsShapeTimesDtypeMismatch) {
  SafetensorsBuilder b = two_tensors();
  b.header()["a"]["shape"] = {3, 3};
  const std::string msg = parse_error(b.build());
  EXPECT_NE(msg.find("tensor 'a': shape [3, 3] x F32 is 36 bytes but data_offsets span 24"),
            std::string::npos)
      << msg;
}

TEST(Safetensors, RejectsElementCountOverflow) {
  SafetensorsBuilder b = two_tensors();
  b.header()["a"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
  EXPECT_NE(parse_error(b.build()).find("tensor 'a': element count of shape overflows"),
            std::string::npos);
  b.header()["a"]["shape"] = {uint64_t{1} << 62};  // count fits, bytes (x4) do not
  EXPECT_NE(parse_error(b.build()).find("byte size of shape overflows"), std::string::npos);
}

TEST(Safetensors, RejectsBadShapeEntries) {
  for (const Json& bad : {Json{-1, 2}, Json{1.5}, Json{"3"}, Json{true}, Json(5),
                          Json::array({1, 1, 1, 1, 1, 1, 1, 1, 1})}) {
    SafetensorsBuilder b = two_tensors();
    b.header()["a"]["shape"] = bad;
    EXPECT_NE(parse_error(b.build()).find("tensor 'a'"), std::string::npos) << bad.dump();
  }
}

TEST(Safetensors, RejectsBadOffsetsEntries) {
  for (const Json& bad : {Json{0}, Json{0, 24, 48}, Json{-1, 23}, Json{24, 0}, Json("0,24")}) {
    SafetensorsBuilder b = two_tensors();
    b.header()["a"]["data_offsets"] = bad;
    EXPECT_NE(parse_error(b.build()).find("tensor 'a'"), std::string::npos) << bad.dump();
  }
}

TEST(Safetensors, RejectsUnsupportedDtypesNamingThem) {
  for (const char* dtype : {"F64", "Q4", "I8", "F8_E4M3", "BOOL", ""}) {
    SafetensorsBuilder b = two_tensors();
    b.header()["a"]["dtype"] = dtype;
    ErrorCode code{};
    const std::string msg = parse_error(b.build(), &code);
    EXPECT_NE(msg.find("w.safetensors: tensor 'a': dtype '" + std::string(dtype) + "'"),
              std::string::npos)
        << msg;
    EXPECT_EQ(code, ErrorCode::kUnsupported);
  }
  SafetensorsBuilder b = two_tensors();
  b.header()["a"].erase("dtype");
  EXPECT_NE(parse_error(b.build()).find("tensor 'a': missing string 'dtype'"), std::string::npos);
}

TEST(Safetensors, RejectsDuplicateTensorNames) {
  SafetensorsBuilder b = two_tensors();
  std::string header = b.header().dump();
  // Rename "b" to "a": the header now names 'a' twice.
  header.replace(header.find("\"b\""), 3, "\"a\"");
  const std::string msg = parse_error(safetensors_bytes(header, b.data()));
  EXPECT_NE(msg.find("tensor 'a': duplicate name"), std::string::npos) << msg;
}

TEST(Safetensors, RejectsBadMetadataAndEntries) {
  SafetensorsBuilder b = two_tensors();
  b.header()["__metadata__"] = {{"k", 1}};
  EXPECT_NE(parse_error(b.build()).find("__metadata__"), std::string::npos);
  SafetensorsBuilder c = two_tensors();
  c.header()["x"] = 5;
  EXPECT_NE(parse_error(c.build()).find("tensor 'x': entry is not an object"), std::string::npos);
}

TEST(Safetensors, OpensFromDiskAndPointsIntoTheMapping) {
  test::TempDir dir;
  const std::string bytes = two_tensors().build();
  test::write_file(dir.file("w.safetensors"), bytes);
  const SafetensorsFile f = SafetensorsFile::open(dir.file("w.safetensors"));
  ASSERT_EQ(f.tensors().size(), 2u);
  const auto* p = static_cast<const char*>(f.data(f.tensors()[1]));
  EXPECT_EQ(std::string(p, 8), bytes.substr(bytes.size() - 8));
}

}  // namespace
}  // namespace autoglm
