// traceparent parsing per W3C Trace Context, and id generation. Thread ownership: test thread.
#include "server/trace_context.h"

#include <gtest/gtest.h>

namespace autoglm::server {
namespace {

constexpr const char* kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesAValidHeader) {
  auto parsed = parse_traceparent(kValid);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->version, "00");
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parsed->flags, "01");
}

TEST(TraceParent, RejectsMalformedHeaders) {
  const char* bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent id
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // 00 + extra
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",         // short flags
  };
  for (const char* header : bad) EXPECT_FALSE(parse_traceparent(header)) << header;
}

TEST(TraceParent, AcceptsFutureVersionsWithExtraFields) {
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
  EXPECT_FALSE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
}

TEST(TraceParent, GeneratedIdsAreHexAndRoundTrip) {
  std::string trace_id = random_hex(16);
  EXPECT_EQ(trace_id.size(), 32u);
  EXPECT_NE(trace_id, random_hex(16));
  std::string header = make_traceparent(trace_id, "00");
  auto parsed = parse_traceparent(header);
  ASSERT_TRUE(parsed.has_value()) << header;
  EXPECT_EQ(parsed->trace_id, trace_id);
  EXPECT_EQ(parsed->flags, "00");
}

}  // namespace
}  // namespace autoglm::server
