// The OpenAI handlers end to end against a real Engine on the glm4-tiny fixture, through
// register_openai_routes and the Router, with a recording Responder standing in for the HTTP
// connection (the HTTP layer itself is tested by the "http" thread): responses and streams
// match the engine's own greedy output, n > 1 and seeds, logprobs, stop, echo, every error
// status, and cancellation on disconnect or a client that stops reading, with the KV freed.
// Thread ownership: the test thread; deltas arrive on the engine thread. Owner: "openai".
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "autoglm/engine.h"
#include "server/openai/openai_routes.h"
#include "server/router.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::server::openai {
namespace {

const std::string kModelDir = std::string(AUTOGLM_FIXTURES_DIR) + "/models/glm4-tiny";

// Records what a handler sends; flags any misuse of the Responder contract.
class RecordingResponder : public Responder {
 public:
  void respond(HttpResponse response) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return;
    if (streaming_) misuse_ = true;
    response_ = std::move(response);
    ended_ = true;
    changed_.notify_all();
  }
  void start_stream(int status, HttpHeaders) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_ || streaming_) misuse_ = true;
    streaming_ = true;
    stream_status_ = status;
  }
  bool send_event(std::string framed) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!streaming_ || ended_) misuse_ = true;
    if (refuse_after_ && events_.size() >= *refuse_after_) return false;
    events_.push_back(std::move(framed));
    changed_.notify_all();
    return true;
  }
  void end_stream() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!streaming_ || ended_) misuse_ = true;
    ended_ = true;
    changed_.notify_all();
  }
  void on_disconnect(std::function<void()> on_gone) override {
    std::lock_guard<std::mutex> lock(mutex_);
    on_gone_ = std::move(on_gone);
  }

  void refuse_after(size_t events) { refuse_after_ = events; }
  void disconnect() {
    std::function<void()> gone;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      gone = on_gone_;
    }
    if (gone) gone();
  }
  // Waits (bounded, as a safety net only) until the exchange ended.
  bool wait_ended() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(120), [&] { return ended_; });
  }
  bool wait_events(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(120), [&] { return events_.size() >= n; });
  }
  HttpResponse response() {
    std::lock_guard<std::mutex> lock(mutex_);
    return response_;
  }
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  bool streaming() {
    std::lock_guard<std::mutex> lock(mutex_);
    return streaming_;
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ended_;
  }
  bool misuse() {
    std::lock_guard<std::mutex> lock(mutex_);
    return misuse_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  HttpResponse response_;
  std::vector<std::string> events_;
  bool streaming_ = false, ended_ = false, misuse_ = false;
  int stream_status_ = 0;
  std::optional<size_t> refuse_after_;
  std::function<void()> on_gone_;
};

EngineOptions engine_options() {
  EngineOptions o;
  o.model_path = kModelDir;
  o.num_kv_blocks = 128;
  o.kv_block_size = 8;  // 1024 tokens in the pool: max_model_len 1024
  o.check_invariants = true;
  return o;
}

// One engine, a served model and a router for a whole test.
struct Server {
  explicit Server(EngineOptions options = engine_options())
      : engine(std::move(options)), chat_template(load_model_chat_template(kModelDir)) {
    model.name = "glm4-tiny";
    model.engine = &engine;
    model.chat_template = &chat_template;
    model.ready = &ready;
    register_openai_routes(router, model);
  }

  // Dispatches and waits for the whole exchange.
  std::shared_ptr<RecordingResponder> call(const std::string& method, const std::string& path,
                                           const std::string& body) {
    auto responder = std::make_shared<RecordingResponder>();
    router.dispatch(request(method, path, body), responder);
    EXPECT_TRUE(responder->wait_ended()) << path << " " << body;
    EXPECT_FALSE(responder->misuse());
    return responder;
  }
  Json post_json(const std::string& path, const std::string& body, int expect_status = 200) {
    auto r = call("POST", path, body);
    EXPECT_EQ(r->response().status, expect_status) << r->response().body;
    return Json::parse(r->response().body);
  }
  static HttpRequest request(const std::string& method, const std::string& path,
                             const std::string& body) {
    HttpRequest r;
    r.method = method;
    r.target = r.path = path;
    r.body = body;
    return r;
  }
  // The engine is idle and every KV block is free again.
  void expect_idle_and_free() {
    for (int i = 0; i < 200000; ++i) {
      auto s = engine.metrics();
      if (s->requests_running == 0 && s->requests_waiting == 0 && s->kv_blocks_used == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "the engine did not return to idle with its KV free";
  }

  Engine engine;
  ModelChatTemplate chat_template;
  std::atomic<bool> ready{true};
  ServedModel model;
  Router router;
};

// One server for most tests, torn down before exit (not a function-local static, so its
// engine thread ends while the process, OpenSSL included, is still whole).
std::unique_ptr<Server> g_server;

class SharedServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { g_server.reset(); }
};
const auto* const g_environment = ::testing::AddGlobalTestEnvironment(new SharedServerEnvironment);

Server& shared_server() {
  if (!g_server) g_server = std::make_unique<Server>();
  return *g_server;
}

// Every "data: {...}" payload of a stream except [DONE], parsed.
std::vector<Json> stream_payloads(const std::vector<std::string>& events, bool* saw_done) {
  std::vector<Json> out;
  *saw_done = false;
  for (const std::string& e : events) {
    EXPECT_EQ(e.rfind("data: ", 0), 0u);
    EXPECT_EQ(e.substr(e.size() - 2), "\n\n");
    const std::string payload = e.substr(6, e.size() - 8);
    if (payload == "[DONE]") {
      EXPECT_FALSE(*saw_done);
      *saw_done = true;
      continue;
    }
    EXPECT_FALSE(*saw_done) << "event after [DONE]";
    out.push_back(Json::parse(payload));
  }
  return out;
}

const char* kHello = R"("messages":[{"role":"user","content":"hello there"}])";

std::string chat(const std::string& extra) {
  return std::string(R"({"model":"glm4-tiny",)") + kHello + (extra.empty() ? "" : ",") + extra +
         "}";
}

std::vector<int32_t> chat_prompt_ids(Server& s) {
  const Json t = s.post_json("/tokenize", std::string("{") + kHello + "}");
  return t["tokens"].get<std::vector<int32_t>>();
}

GenerationOutput engine_greedy(Server& s, std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest r;
  r.prompt_ids = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  return s.engine.generate(r);
}

TEST(OpenAiHandlers, RegistersFiveRoutes) {
  Server& s = shared_server();
  EXPECT_EQ(s.router.routes().size(), 5u);
  EXPECT_EQ(s.model.max_model_len, 1024);
  EXPECT_EQ(s.model.limits.vocab_size, 1024);
}

TEST(OpenAiHandlers, ChatCompletionMatchesTheEngine) {
  Server& s = shared_server();
  const Json j = s.post_json("/v1/chat/completions",
                             chat(R"("temperature":0,"max_tokens":8,"ignore_eos":true)"));
  const GenerationOutput expected = engine_greedy(s, chat_prompt_ids(s), 8);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["model"], "glm4-tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected.text);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["prompt_tokens"], chat_prompt_ids(s).size());
  EXPECT_EQ(j["usage"]["total_tokens"], 8 + chat_prompt_ids(s).size());
}

TEST(OpenAiHandlers, StreamedChatHasRoleContentFinishUsageDone) {
  Server& s = shared_server();
  auto r = s.call("POST", "/v1/chat/completions",
                  chat(R"("temperature":0,"max_tokens":10,"ignore_eos":true,"stream":true,
                          "stream_options":{"include_usage":true})"));
  ASSERT_TRUE(r->streaming());
  bool done = false;
  const std::vector<Json> chunks = stream_payloads(r->events(), &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  std::optional<std::string> finish;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(chunks[i]["id"], chunks[0]["id"]);
    EXPECT_TRUE(chunks[i]["usage"].is_null());
    const Json& choice = chunks[i]["choices"][0];
    if (choice["delta"].contains("content")) content += choice["delta"]["content"];
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(content, engine_greedy(s, chat_prompt_ids(s), 10).text);
  const Json& usage = chunks.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);
}

TEST(OpenAiHandlers, NChoicesWithASeedAreReproducible) {
  Server& s = shared_server();
  const std::string body = chat(R"("temperature":1.0,"max_tokens":12,"n":2,"seed":7,
                                   "ignore_eos":true)");
  const Json a = s.post_json("/v1/chat/completions", body);
  const Json b = s.post_json("/v1/chat/completions", body);
  ASSERT_EQ(a["choices"].size(), 2u);
  EXPECT_EQ(a["choices"][0]["index"], 0);
  EXPECT_EQ(a["choices"][1]["index"], 1);
  EXPECT_EQ(a["choices"], b["choices"]);
  EXPECT_NE(a["id"], b["id"]);
  // The prompt is counted once, the completions of both choices.
  EXPECT_EQ(a["usage"]["prompt_tokens"], chat_prompt_ids(s).size());
  EXPECT_EQ(a["usage"]["completion_tokens"], 24);
}

TEST(OpenAiHandlers, StreamedNChoicesEachFinish) {
  Server& s = shared_server();
  auto r = s.call("POST", "/v1/chat/completions",
                  chat(R"("max_tokens":4,"n":3,"seed":1,"ignore_eos":true,"stream":true)"));
  bool done = false;
  const std::vector<Json> chunks = stream_payloads(r->events(), &done);
  EXPECT_TRUE(done);
  std::vector<int> roles(3), finishes(3);
  for (const Json& c : chunks) {
    EXPECT_FALSE(c.contains("usage"));
    const Json& choice = c["choices"][0];
    const int index = choice["index"];
    if (choice["delta"].contains("role")) ++roles[index];
    if (!choice["finish_reason"].is_null()) ++finishes[index];
  }
  EXPECT_EQ(roles, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(finishes, (std::vector<int>{1, 1, 1}));
}

TEST(OpenAiHandlers, ChatLogprobsCoverEveryToken) {
  Server& s = shared_server();
  const Json j = s.post_json(
      "/v1/chat/completions",
      chat(R"("temperature":0,"max_tokens":6,"ignore_eos":true,"logprobs":true,"top_logprobs":2)"));
  const Json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u);
  for (const Json& entry : content) {
    ASSERT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(entry["token"], entry["top_logprobs"][0]["token"]);
    EXPECT_DOUBLE_EQ(entry["logprob"].get<double>(),
                     entry["top_logprobs"][0]["logprob"].get<double>());
    EXPECT_TRUE(entry["bytes"].is_array());
  }
}

TEST(OpenAiHandlers, StopStringEndsTheChoiceBeforeIt) {
  Server& s = shared_server();
  const std::string full = engine_greedy(s, chat_prompt_ids(s), 16).text;
  ASSERT_GE(full.size(), 4u);
  const std::string stop = full.substr(full.size() / 2, 1);
  const std::string expected = full.substr(0, full.find(stop));
  const Json j = s.post_json("/v1/chat/completions",
                             chat(R"("temperature":0,"max_tokens":16,"ignore_eos":true,"stop":[)" +
                                  Json(stop).dump() + "]"));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected);
}

TEST(OpenAiHandlers, CompletionsWithTextIdsEchoAndLogprobs) {
  Server& s = shared_server();
  const Json text = s.post_json(
      "/v1/completions",
      R"({"model":"glm4-tiny","prompt":"abc","temperature":0,"max_tokens":5,"ignore_eos":true,"echo":true})");
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(text["choices"][0]["text"].get<std::string>().rfind("abc", 0), 0u);
  const std::vector<int32_t> ids = s.engine.encode("abc");
  const Json by_ids =
      s.post_json("/v1/completions", R"({"model":"glm4-tiny","prompt":)" + Json(ids).dump() +
                                         R"(,"temperature":0,"max_tokens":5,
                                                         "ignore_eos":true,"logprobs":1})");
  EXPECT_EQ("abc" + by_ids["choices"][0]["text"].get<std::string>(),
            text["choices"][0]["text"].get<std::string>());
  const Json& lp = by_ids["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 5u);
  ASSERT_EQ(lp["token_logprobs"].size(), 5u);
  ASSERT_EQ(lp["top_logprobs"].size(), 5u);
  ASSERT_EQ(lp["text_offset"].size(), 5u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(by_ids["usage"]["prompt_tokens"], ids.size());
  // Default max_tokens for completions is 16, as OpenAI's.
  const Json dflt =
      s.post_json("/v1/completions", R"({"model":"glm4-tiny","prompt":"abc","ignore_eos":true})");
  EXPECT_EQ(dflt["usage"]["completion_tokens"], 16);
}

TEST(OpenAiHandlers, CompletionsWithSeveralPrompts) {
  Server& s = shared_server();
  const Json j = s.post_json("/v1/completions",
                             R"({"model":"glm4-tiny","prompt":["a","bb"],"n":2,"max_tokens":3,
                                 "temperature":0,"ignore_eos":true})");
  ASSERT_EQ(j["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  EXPECT_EQ(j["choices"][0]["text"], j["choices"][1]["text"]);  // greedy: the same twice
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_EQ(j["usage"]["prompt_tokens"],
            s.engine.encode("a").size() + s.engine.encode("bb").size());
}

TEST(OpenAiHandlers, StreamedCompletion) {
  Server& s = shared_server();
  auto r = s.call("POST", "/v1/completions",
                  R"({"model":"glm4-tiny","prompt":"abc","temperature":0,"max_tokens":6,
                      "ignore_eos":true,"stream":true,"echo":true})");
  bool done = false;
  const std::vector<Json> chunks = stream_payloads(r->events(), &done);
  EXPECT_TRUE(done);
  std::string text;
  for (const Json& c : chunks) {
    EXPECT_EQ(c["object"], "text_completion");
    text += c["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(text, "abc" + engine_greedy(s, s.engine.encode("abc"), 6).text);
}

TEST(OpenAiHandlers, ErrorsHaveTheirStatusAndShape) {
  Server& s = shared_server();
  const Json unknown =
      s.post_json("/v1/chat/completions",
                  R"({"model":"../etc/passwd","messages":[{"role":"user","content":"x"}]})", 404);
  EXPECT_EQ(unknown["error"]["code"], "model_not_found");
  EXPECT_EQ(unknown["error"]["param"], "model");
  const Json bad = s.post_json("/v1/chat/completions", chat(R"("temperature":3)"), 400);
  EXPECT_EQ(bad["error"]["type"], "invalid_request_error");
  EXPECT_EQ(bad["error"]["param"], "temperature");
  EXPECT_TRUE(bad["error"]["code"].is_null());
  const Json too_long = s.post_json("/v1/chat/completions", chat(R"("max_tokens":1020)"), 400);
  EXPECT_EQ(too_long["error"]["code"], "context_length_exceeded");
  EXPECT_NE(too_long["error"]["message"].get<std::string>().find("1024"), std::string::npos);
  std::string huge(3000, 'x');
  for (size_t i = 1; i < huge.size(); i += 2) huge[i] = ' ';
  const Json prompt_alone =
      s.post_json("/v1/completions", R"({"model":"glm4-tiny","prompt":")" + huge + "\"}", 413);
  EXPECT_EQ(prompt_alone["error"]["code"], "context_length_exceeded");
  const Json image = s.post_json(
      "/v1/chat/completions",
      R"({"model":"glm4-tiny","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://169.254.169.254/"}}]}]})",
      400);
  EXPECT_NE(image["error"]["message"].get<std::string>().find("text only"), std::string::npos);
  s.post_json("/v1/chat/completions", "{not json", 400);
}

TEST(OpenAiHandlers, NotReadyIs503) {
  Server& s = shared_server();
  s.ready = false;
  const Json j = s.post_json("/v1/chat/completions", chat(""), 503);
  auto models = s.call("GET", "/v1/models", "");
  s.ready = true;
  EXPECT_EQ(j["error"]["code"], "service_unavailable");
  EXPECT_EQ(models->response().status, 503);
}

// The deadline races the engine, so each outcome the server may correctly give is checked
// for its shape: admission may already see the deadline as unreachable (429), the request may
// time out before its stream opened (a 408 response), or after (an error event, then [DONE]).
void expect_timeout_outcome(RecordingResponder& r) {
  if (!r.streaming()) {
    const int status = r.response().status;
    EXPECT_TRUE(status == 408 || status == 429) << status << " " << r.response().body;
    const Json body = Json::parse(r.response().body);
    EXPECT_EQ(body["error"]["code"], status == 408 ? "request_timeout" : "queue_full");
    return;
  }
  const std::vector<std::string> events = r.events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "data: [DONE]\n\n");
  const Json error = Json::parse(events[events.size() - 2].substr(6));
  EXPECT_EQ(error["error"]["code"], "request_timeout");
}

TEST(OpenAiHandlers, ATimedOutRequestIs408OrAnErrorEventInAStream) {
  Server s;
  // Far too short for 1000 tokens on the CPU.
  s.model.request_timeout = std::chrono::milliseconds(20);
  const std::string body = R"({"model":"glm4-tiny","prompt":"abc","max_tokens":1000,
                              "ignore_eos":true)";
  expect_timeout_outcome(*s.call("POST", "/v1/completions", body + "}"));
  expect_timeout_outcome(*s.call("POST", "/v1/completions", body + R"(,"stream":true})"));
  s.expect_idle_and_free();
}

TEST(OpenAiHandlers, QueueFullIs429WithRetryAfter) {
  EngineOptions o = engine_options();
  o.max_queued_requests = 0;  // every submit finds the queue full
  Server s(o);
  auto r = s.call("POST", "/v1/chat/completions", chat(R"("n":2,"stream":true)"));
  EXPECT_FALSE(r->streaming());
  EXPECT_EQ(r->response().status, 429);
  const HttpHeaders& headers = r->response().headers;
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].first, "Retry-After");
  EXPECT_GE(std::stoi(headers[0].second), 1);
  EXPECT_EQ(Json::parse(r->response().body)["error"]["type"], "rate_limit_error");
}

TEST(OpenAiHandlers, DisconnectCancelsAndFreesTheKv) {
  Server& s = shared_server();
  auto responder = std::make_shared<RecordingResponder>();
  s.router.dispatch(
      Server::request("POST", "/v1/chat/completions",
                      chat(R"("max_tokens":900,"ignore_eos":true,"stream":true,"n":2)")),
      responder);
  ASSERT_TRUE(responder->wait_events(4));
  responder->disconnect();
  s.expect_idle_and_free();
  EXPECT_FALSE(responder->ended());  // nobody to answer: the stream is just dropped
  EXPECT_LT(responder->events().size(), 900u);
  EXPECT_FALSE(responder->misuse());
}

TEST(OpenAiHandlers, AClientThatStopsReadingIsCancelled) {
  Server& s = shared_server();
  auto responder = std::make_shared<RecordingResponder>();
  responder->refuse_after(3);
  s.router.dispatch(Server::request("POST", "/v1/completions",
                                    R"({"model":"glm4-tiny","prompt":"abc","max_tokens":900,
                                        "ignore_eos":true,"stream":true})"),
                    responder);
  ASSERT_TRUE(responder->wait_events(3));
  s.expect_idle_and_free();
  EXPECT_EQ(responder->events().size(), 3u);
  EXPECT_FALSE(responder->ended());
  EXPECT_FALSE(responder->misuse());
}

TEST(OpenAiHandlers, ModelsTokenizeDetokenize) {
  Server& s = shared_server();
  auto models = s.call("GET", "/v1/models", "");
  const Json m = Json::parse(models->response().body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "glm4-tiny");
  EXPECT_EQ(m["data"][0]["object"], "model");
  const Json t = s.post_json("/tokenize", R"({"model":"glm4-tiny","prompt":"hello world"})");
  EXPECT_EQ(t["count"], t["tokens"].size());
  EXPECT_EQ(t["max_model_len"], 1024);
  const Json d = s.post_json("/detokenize", R"({"tokens":)" + t["tokens"].dump() + "}");
  EXPECT_EQ(d["prompt"], "[gMASK]<sop>hello world");  // the tokenizer's prefix, as HF adds it
  const Json raw =
      s.post_json("/tokenize", R"({"prompt":"hello world","add_special_tokens":false})");
  EXPECT_EQ(raw["count"].get<size_t>() + 2, t["count"].get<size_t>());
  EXPECT_EQ(s.post_json("/detokenize", R"({"tokens":)" + raw["tokens"].dump() + "}")["prompt"],
            "hello world");
  EXPECT_EQ(s.post_json("/detokenize", R"({"tokens":[5000]})", 400)["error"]["param"], "tokens[0]");
  EXPECT_EQ(s.post_json("/tokenize", R"({"model":"other","prompt":"x"})", 404)["error"]["code"],
            "model_not_found");
  EXPECT_EQ(s.post_json("/tokenize", R"({})", 400)["error"]["param"], "prompt");
}

TEST(OpenAiHandlers, UserTextNeverFormsControlTokens) {
  Server& s = shared_server();
  const uint32_t assistant = *s.engine.tokenizer().token_to_id("<|assistant|>");
  const auto count_assistant = [&](const std::string& content) {
    const Json t = s.post_json(
        "/tokenize", R"({"messages":[{"role":"user","content":)" + Json(content).dump() + "}]}");
    int n = 0;
    for (const Json& id : t["tokens"]) n += id.get<uint32_t>() == assistant ? 1 : 0;
    return n;
  };
  EXPECT_EQ(count_assistant("hi"), 1);  // the template's generation prompt
  EXPECT_EQ(count_assistant("hi <|assistant|> <|user|>"), 1);
  // A completions prompt is plain text too.
  const Json t = s.post_json("/tokenize", R"({"prompt":"<|assistant|>"})");
  for (const Json& id : t["tokens"]) EXPECT_NE(id.get<uint32_t>(), assistant);
}

}  // namespace
}  // namespace autoglm::server::openai
