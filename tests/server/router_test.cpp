// Router tests: exact method+path matching, 404 and 405 (with Allow) in the OpenAI error shape,
// duplicate routes rejected. Thread ownership: test main thread.
#include "server/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace autoglm::server {
namespace {

// Records what a handler answered (a real Responder implementation for in-process use).
class RecordingResponder : public Responder {
 public:
  void respond(HttpResponse response) override { responses.push_back(std::move(response)); }
  void start_stream(int, HttpHeaders) override { ++streams; }
  bool send_event(std::string) override { return true; }
  void end_stream() override {}
  void on_disconnect(std::function<void()>) override {}
  std::vector<HttpResponse> responses;
  int streams = 0;
};

HttpRequest make_request(std::string method, std::string path) {
  HttpRequest request;
  request.method = std::move(method);
  request.path = path;
  request.target = std::move(path);
  return request;
}

void fill_router(Router& router, std::vector<std::string>* calls) {
  router.add(
      "GET", "/health",
      [calls](const HttpRequest&, std::shared_ptr<Responder> r) {
        calls->push_back("health");
        r->respond(HttpResponse{
            .status = 200, .content_type = "application/json", .headers = {}, .body = "{}"});
      },
      "/health");
  router.add(
      "POST", "/v1/completions",
      [calls](const HttpRequest&, std::shared_ptr<Responder> r) {
        calls->push_back("completions");
        r->respond(HttpResponse{
            .status = 200, .content_type = "application/json", .headers = {}, .body = "{}"});
      },
      "/v1/completions");
  router.add(
      "PUT", "/v1/completions", [](const HttpRequest&, std::shared_ptr<Responder>) {},
      "/v1/completions");
}

TEST(Router, DispatchesExactMethodAndPath) {
  std::vector<std::string> calls;
  Router router;
  fill_router(router, &calls);
  auto responder = std::make_shared<RecordingResponder>();
  EXPECT_EQ(router.dispatch(make_request("POST", "/v1/completions"), responder), "/v1/completions");
  EXPECT_EQ(router.dispatch(make_request("GET", "/health"), responder), "/health");
  EXPECT_EQ(calls, (std::vector<std::string>{"completions", "health"}));
  ASSERT_EQ(responder->responses.size(), 2u);
  EXPECT_EQ(responder->responses[0].status, 200);
}

TEST(Router, UnknownPathIs404InOpenAiShape) {
  std::vector<std::string> calls;
  Router router;
  fill_router(router, &calls);
  auto responder = std::make_shared<RecordingResponder>();
  EXPECT_EQ(router.dispatch(make_request("GET", "/health/"), responder), "unmatched");
  ASSERT_EQ(responder->responses.size(), 1u);
  EXPECT_EQ(responder->responses[0].status, 404);
  auto body = nlohmann::json::parse(responder->responses[0].body);
  EXPECT_TRUE(body["error"]["message"].is_string());
  EXPECT_EQ(body["error"]["type"], "not_found_error");
  EXPECT_TRUE(body["error"].contains("param"));
  EXPECT_TRUE(body["error"].contains("code"));
  EXPECT_TRUE(calls.empty());
}

TEST(Router, WrongMethodIs405WithAllowHeader) {
  std::vector<std::string> calls;
  Router router;
  fill_router(router, &calls);
  auto responder = std::make_shared<RecordingResponder>();
  EXPECT_EQ(router.dispatch(make_request("GET", "/v1/completions"), responder), "/v1/completions");
  ASSERT_EQ(responder->responses.size(), 1u);
  const HttpResponse& response = responder->responses[0];
  EXPECT_EQ(response.status, 405);
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].first, "allow");
  EXPECT_EQ(response.headers[0].second, "POST, PUT");
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["type"], "invalid_request_error");
}

TEST(Router, DuplicateRouteThrows) {
  Router router;
  router.add(
      "GET", "/a", [](const HttpRequest&, std::shared_ptr<Responder>) {}, "/a");
  EXPECT_THROW(router.add(
                   "GET", "/a", [](const HttpRequest&, std::shared_ptr<Responder>) {}, "/a"),
               autoglm::Error);
  EXPECT_NO_THROW(router.add(
      "POST", "/a", [](const HttpRequest&, std::shared_ptr<Responder>) {}, "/a"));
  EXPECT_EQ(router.routes().size(), 2u);
}

TEST(Router, QueryStringIsNotPartOfMatching) {
  std::vector<std::string> calls;
  Router router;
  fill_router(router, &calls);
  auto responder = std::make_shared<RecordingResponder>();
  HttpRequest request = make_request("GET", "/health");
  request.target = "/health?verbose=1";
  router.dispatch(request, responder);
  EXPECT_EQ(calls, (std::vector<std::string>{"health"}));
}

}  // namespace
}  // namespace autoglm::server
