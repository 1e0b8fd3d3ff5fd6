// Tests for the incremental SSE parser: the same event stream, fed whole, byte by byte and
// split in two at every byte boundary, gives the same events.
// Thread ownership: test main thread.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench_serve/sse_parser.h"
#include "core/error.h"

namespace autoglm::bench {
namespace {

std::vector<std::pair<std::string, std::string>> parse_in_pieces(const std::string& stream,
                                                                 const std::vector<size_t>& cuts) {
  SseParser parser;
  std::vector<std::pair<std::string, std::string>> events;
  auto on_event = [&](SseEvent&& e) { events.emplace_back(e.type, e.data); };
  size_t from = 0;
  for (size_t cut : cuts) {
    parser.feed(std::string_view(stream).substr(from, cut - from), on_event);
    from = cut;
  }
  parser.feed(std::string_view(stream).substr(from), on_event);
  return events;
}

// Every line ending (LF, CRLF, CR), a comment, a multi-line event, a named event, a field
// without a space after the colon, an empty data field, and an unfinished last event.
const std::string kStream =
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"text\":\"a\"}]}\n\n"
    "data: first line\r\ndata: second line\r\n\r\n"
    "event: error\rdata:{\"error\":1}\r\r"
    "id: 7\nretry: 10\ndata:\n\n"
    "data: [DONE]\n\n"
    "data: never finished";

const std::vector<std::pair<std::string, std::string>> kExpected = {
    {"", "{\"choices\":[{\"text\":\"a\"}]}"},
    {"", "first line\nsecond line"},
    {"error", "{\"error\":1}"},
    {"", ""},
    {"", "[DONE]"},
};

TEST(SseParser, WholeStream) {
  EXPECT_EQ(parse_in_pieces(kStream, {}), kExpected);
}

TEST(SseParser, SplitInTwoAtEveryByte) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(kStream, {cut}), kExpected) << "split at byte " << cut;
  }
}

TEST(SseParser, SplitAtEveryByteAtOnce) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kStream.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(kStream, cuts), kExpected);
}

TEST(SseParser, CrLfSplitAcrossReadsIsOneLineEnd) {
  // "\r" ends a read and "\n" starts the next: one line end, not a blank line between.
  const std::string stream = "data: a\r\ndata: b\r\n\r\n";
  EXPECT_EQ(parse_in_pieces(stream, {8}),
            (std::vector<std::pair<std::string, std::string>>{{"", "a\nb"}}));
}

TEST(SseParser, UnfinishedEventIsHeldNotDispatched) {
  SseParser parser;
  int events = 0;
  parser.feed("data: partial\n", [&](SseEvent&&) { ++events; });
  EXPECT_EQ(events, 0);
  EXPECT_FALSE(parser.idle());
  parser.feed("\n", [&](SseEvent&&) { ++events; });
  EXPECT_EQ(events, 1);
  EXPECT_TRUE(parser.idle());
}

TEST(SseParser, OversizedEventIsAnError) {
  SseParser parser(64);
  const std::string big = "data: " + std::string(100, 'x');
  EXPECT_THROW(parser.feed(big, [](SseEvent&&) {}), Error);
}

TEST(SseParser, OversizedMultiLineEventIsAnError) {
  SseParser parser(64);
  std::string stream;
  for (int i = 0; i < 10; ++i) stream += "data: 0123456789\n";
  EXPECT_THROW(parser.feed(stream, [](SseEvent&&) {}), Error);
}

}  // namespace
}  // namespace autoglm::bench
