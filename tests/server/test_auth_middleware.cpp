// The Authenticator in front of the router, with real key stores and a real JwtVerifier
// (HS256 tokens minted independently with OpenSSL): 401/403/429 answers and their audit
// records, principals set on success, brute-force blocking with an injected clock, and key
// swaps (hot reload) taking effect on the next request.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "../security/jwt_test_util.h"
#include "security/api_keys.h"
#include "server/auth_middleware.h"

namespace autoglm::server {
namespace {

using namespace std::chrono_literals;
using security::Role;

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256-secret";

class RecordingSink : public security::AuditSink {
 public:
  bool record(const security::AuditEvent& event) noexcept override {
    std::lock_guard lock(mutex_);
    events.push_back(event);
    return true;
  }
  std::mutex mutex_;
  std::vector<security::AuditEvent> events;
};

std::shared_ptr<const security::ApiKeyStore> keys(
    std::initializer_list<std::tuple<std::string, std::string, Role>> entries) {
  std::vector<security::ApiKeyRecord> records;
  for (const auto& [id, key, role] : entries) {
    security::ApiKeyRecord record;
    record.id = id;
    record.hash = security::sha256(key);
    record.role = role;
    if (id == "restricted") record.models = {"other-model"};
    records.push_back(record);
  }
  return std::make_shared<const security::ApiKeyStore>(std::move(records));
}

class AuthMiddlewareTest : public ::testing::Test {
 protected:
  AuthMiddlewareTest() {
    state.set_audit_sink(sink);
    auth.set_api_keys(keys({{"alice", "key-user-alice-0001", Role::kUser},
                            {"scraper", "key-metrics-0001", Role::kMetrics},
                            {"root", "key-admin-0001", Role::kAdmin}}));
    security::JwtKey key{"k1", security::JwtAlgorithm::kHS256, kSecret};
    security::JwtPolicy policy;
    policy.issuer = "https://issuer.test";
    policy.audience = "autoglm";
    auth.set_jwt_verifier(
        std::make_shared<const security::JwtVerifier>(std::vector<security::JwtKey>{key}, policy));
  }

  HttpRequest request(std::string path, std::string authorization = "",
                      std::string ip = "10.0.0.1") {
    HttpRequest r;
    r.method = "GET";
    r.path = r.target = std::move(path);
    r.client_ip = std::move(ip);
    r.trace_id = "trace-1";
    if (!authorization.empty()) r.headers.emplace_back("authorization", std::move(authorization));
    return r;
  }

  static std::string jwt(const std::string& claims) {
    return security::testing::mint_hs256(R"({"alg":"HS256","typ":"JWT","kid":"k1"})", claims,
                                         kSecret);
  }
  static std::string claims(const std::string& role_field) {
    return R"({"sub":"bob","iss":"https://issuer.test","aud":"autoglm","exp":)" +
           std::to_string(kNow + 600) + role_field + "}";
  }

  std::string header_of(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return "";
  }

  std::chrono::steady_clock::time_point steady_now{};
  ServerState state;
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  Authenticator auth{state, 5, [] { return kNow; }, [this] { return steady_now; }};
};

TEST_F(AuthMiddlewareTest, HealthNeedsNothing) {
  HttpRequest r = request("/health");
  EXPECT_EQ(auth.authenticate(r), std::nullopt);
  EXPECT_EQ(r.principal, nullptr);
}

TEST_F(AuthMiddlewareTest, MissingOrWrongCredentialIs401AndAuditedWithoutTheSecret) {
  for (const char* path : {"/metrics", "/tokenize", "/v1/models", "/admin/reload", "/ready"}) {
    HttpRequest r = request(path, "", std::string("10.1.0.") + path[1]);
    std::optional<HttpResponse> refusal = auth.authenticate(r);
    ASSERT_TRUE(refusal) << path;
    EXPECT_EQ(refusal->status, 401);
    EXPECT_EQ(header_of(*refusal, "WWW-Authenticate"), "Bearer");
    EXPECT_NE(refusal->body.find("authentication_error"), std::string::npos);
  }
  HttpRequest wrong = request("/v1/models", "Bearer key-user-alice-0002");
  std::optional<HttpResponse> refusal = auth.authenticate(wrong);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 401);
  EXPECT_EQ(refusal->body.find("key-user-alice"), std::string::npos);
  ASSERT_EQ(sink->events.size(), 6u);
  const security::AuditEvent& event = sink->events.back();
  EXPECT_EQ(event.action, "auth_failure");
  EXPECT_EQ(event.user_id, "anonymous");
  EXPECT_EQ(event.resource, "/v1/models");
  EXPECT_EQ(event.client_ip, "10.0.0.1");
  EXPECT_EQ(event.http_status, 401);
  EXPECT_EQ(event.trace_id, "trace-1");
  EXPECT_EQ(event.detail.find("key-user-alice"), std::string::npos);
}

TEST_F(AuthMiddlewareTest, MalformedAuthorizationHeadersAre401) {
  for (const char* header : {"Basic a2V5LXVzZXI=", "Bearer", "Bearer    ", "key-user-alice-0001",
                             "Bearerkey-user-alice-0001"}) {
    HttpRequest r = request("/v1/models", header, header);  // own IP: no brute-force block
    std::optional<HttpResponse> refusal = auth.authenticate(r);
    ASSERT_TRUE(refusal) << header;
    EXPECT_EQ(refusal->status, 401) << header;
  }
}

TEST_F(AuthMiddlewareTest, ApiKeySetsThePrincipal) {
  HttpRequest r = request("/v1/chat/completions", "bearer  key-user-alice-0001 ");
  EXPECT_EQ(auth.authenticate(r), std::nullopt);
  ASSERT_NE(r.principal, nullptr);
  EXPECT_EQ(r.principal->id, "alice");
  EXPECT_EQ(r.principal->kind, security::CredentialKind::kApiKey);
  EXPECT_EQ(r.principal->role, Role::kUser);
  EXPECT_TRUE(sink->events.empty());
}

TEST_F(AuthMiddlewareTest, RolesAreEnforcedWith403) {
  struct Case {
    const char* path;
    const char* key;
    int status;  // 0: allowed
  };
  const Case cases[] = {
      {"/metrics", "key-metrics-0001", 0},        {"/metrics", "key-admin-0001", 0},
      {"/metrics", "key-user-alice-0001", 403},   {"/v1/models", "key-metrics-0001", 403},
      {"/tokenize", "key-metrics-0001", 403},     {"/admin/reload", "key-user-alice-0001", 403},
      {"/admin/reload", "key-metrics-0001", 403}, {"/admin/reload", "key-admin-0001", 0},
      {"/ready", "key-metrics-0001", 0},          {"/openapi.json", "key-user-alice-0001", 0},
  };
  for (const Case& c : cases) {
    HttpRequest r = request(c.path, std::string("Bearer ") + c.key);
    std::optional<HttpResponse> refusal = auth.authenticate(r);
    if (c.status == 0) {
      EXPECT_EQ(refusal, std::nullopt) << c.path << " " << c.key;
    } else {
      ASSERT_TRUE(refusal) << c.path << " " << c.key;
      EXPECT_EQ(refusal->status, 403);
      EXPECT_NE(refusal->body.find("permission_error"), std::string::npos);
    }
  }
  ASSERT_EQ(sink->events.size(), 5u);
  EXPECT_EQ(sink->events[0].action, "forbidden");
  EXPECT_EQ(sink->events[0].user_id, "alice");
  EXPECT_EQ(sink->events[0].http_status, 403);
}

TEST_F(AuthMiddlewareTest, RepeatedFailuresFromOneAddressAre429BeforeTheCredential) {
  for (int i = 0; i < 5; ++i) {
    HttpRequest r = request("/v1/models", "Bearer guess-" + std::to_string(i));
    EXPECT_EQ(auth.authenticate(r)->status, 401);
  }
  HttpRequest good = request("/v1/models", "Bearer key-user-alice-0001");
  std::optional<HttpResponse> blocked = auth.authenticate(good);
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->status, 429);
  EXPECT_EQ(header_of(*blocked, "Retry-After"), "12");  // one try per 60/5 s
  EXPECT_EQ(good.principal, nullptr);
  EXPECT_EQ(sink->events.back().action, "rate_limited");
  HttpRequest health = request("/health");
  EXPECT_EQ(auth.authenticate(health), std::nullopt);  // liveness is never blocked
  HttpRequest elsewhere = request("/v1/models", "Bearer key-user-alice-0001", "10.0.0.2");
  EXPECT_EQ(auth.authenticate(elsewhere), std::nullopt);
  steady_now += 12s;
  EXPECT_EQ(auth.authenticate(good), std::nullopt);
}

TEST_F(AuthMiddlewareTest, SwappedKeysApplyToTheNextRequest) {
  HttpRequest before = request("/v1/models", "Bearer key-user-alice-0001");
  EXPECT_EQ(auth.authenticate(before), std::nullopt);
  auth.set_api_keys(keys({{"alice", "key-user-alice-0002", Role::kUser}}));
  HttpRequest old_key = request("/v1/models", "Bearer key-user-alice-0001");
  EXPECT_EQ(auth.authenticate(old_key)->status, 401);
  HttpRequest new_key = request("/v1/models", "Bearer key-user-alice-0002");
  EXPECT_EQ(auth.authenticate(new_key), std::nullopt);
  EXPECT_EQ(before.principal->id, "alice");  // a request already admitted keeps its principal
}

TEST_F(AuthMiddlewareTest, JwtBearerTokens) {
  HttpRequest ok =
      request("/v1/models", "Bearer " + jwt(claims(R"(,"role":"user","models":["m"])")));
  EXPECT_EQ(auth.authenticate(ok), std::nullopt);
  ASSERT_NE(ok.principal, nullptr);
  EXPECT_EQ(ok.principal->id, "bob");
  EXPECT_EQ(ok.principal->kind, security::CredentialKind::kJwt);
  EXPECT_FALSE(ok.principal->may_use_model("other"));

  HttpRequest admin_claim = request("/admin/reload", "Bearer " + jwt(claims(R"(,"role":"admin")")));
  EXPECT_EQ(auth.authenticate(admin_claim), std::nullopt);

  HttpRequest no_role = request("/v1/models", "Bearer " + jwt(claims("")));
  EXPECT_EQ(auth.authenticate(no_role)->status, 403);
  EXPECT_EQ(sink->events.back().user_id, "bob");

  std::string forged = jwt(claims(R"(,"role":"user")"));
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  HttpRequest bad = request("/v1/models", "Bearer " + forged, "10.9.9.9");
  std::optional<HttpResponse> refusal = auth.authenticate(bad);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 401);
  EXPECT_EQ(refusal->body.find(forged), std::string::npos);
  EXPECT_EQ(sink->events.back().action, "auth_failure");

  auth.set_jwt_verifier(nullptr);  // JWTs not configured: a token-shaped credential is 401
  HttpRequest unconfigured = request("/v1/models", "Bearer " + jwt(claims(R"(,"role":"user")")));
  EXPECT_EQ(auth.authenticate(unconfigured)->status, 401);
}

}  // namespace
}  // namespace autoglm::server
