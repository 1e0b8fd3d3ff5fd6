// The route policy table (which role may call which route) and the auth mode rule (auto is off
// on loopback only; on without any credential source refuses to start).
#include <gtest/gtest.h>

#include "core/error.h"
#include "server/auth_policy.h"
#include "server/auth_settings.h"

namespace autoglm::server {
namespace {

using security::Role;

TEST(AuthPolicy, RouteTable) {
  EXPECT_EQ(route_access("/health"), RouteAccess::kPublic);
  EXPECT_EQ(route_access("/metrics"), RouteAccess::kMetrics);
  EXPECT_EQ(route_access("/v1/chat/completions"), RouteAccess::kInference);
  EXPECT_EQ(route_access("/v1/models"), RouteAccess::kInference);
  EXPECT_EQ(route_access("/v1"), RouteAccess::kInference);
  EXPECT_EQ(route_access("/tokenize"), RouteAccess::kInference);
  EXPECT_EQ(route_access("/detokenize"), RouteAccess::kInference);
  EXPECT_EQ(route_access("/admin/reload"), RouteAccess::kAdmin);
  EXPECT_EQ(route_access("/admin"), RouteAccess::kAdmin);
  EXPECT_EQ(route_access("/ready"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access("/version"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access("/openapi.json"), RouteAccess::kAuthenticated);
  // Look-alikes get no special treatment, and unknown paths still need a credential.
  EXPECT_EQ(route_access("/administrator"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access("/v1x"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access("/health/"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access("/nope"), RouteAccess::kAuthenticated);
  EXPECT_EQ(route_access(""), RouteAccess::kAuthenticated);
}

TEST(AuthPolicy, RolesPerAccess) {
  struct Case {
    RouteAccess access;
    bool admin, user, metrics;
  };
  const Case cases[] = {
      {RouteAccess::kPublic, true, true, true},   {RouteAccess::kAuthenticated, true, true, true},
      {RouteAccess::kMetrics, true, false, true}, {RouteAccess::kInference, true, true, false},
      {RouteAccess::kAdmin, true, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(route_access_name(c.access)));
    EXPECT_EQ(role_may_access(Role::kAdmin, c.access), c.admin);
    EXPECT_EQ(role_may_access(Role::kUser, c.access), c.user);
    EXPECT_EQ(role_may_access(Role::kMetrics, c.access), c.metrics);
  }
}

TEST(AuthSettings, LoopbackHosts) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]", "localhost"}) {
    EXPECT_TRUE(is_loopback_host(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "127.0.0", "127.0.0.1.5", "127..0.1",
                           "127.0.0.1000", "128.0.0.1", "localhost.evil.com", "", "127.a.0.1"}) {
    EXPECT_FALSE(is_loopback_host(host)) << host;
  }
}

TEST(AuthSettings, Modes) {
  AuthSettings settings;
  EXPECT_FALSE(auth_required(settings, "127.0.0.1"));       // auto on loopback: off
  EXPECT_THROW(auth_required(settings, "0.0.0.0"), Error);  // auto elsewhere: on, no keys
  settings.api_keys_file = "keys.yaml";
  EXPECT_TRUE(auth_required(settings, "0.0.0.0"));
  EXPECT_FALSE(auth_required(settings, "localhost"));
  settings.mode = "on";
  EXPECT_TRUE(auth_required(settings, "127.0.0.1"));
  settings.mode = "off";
  EXPECT_FALSE(auth_required(settings, "0.0.0.0"));
  settings.mode = "maybe";
  EXPECT_THROW(auth_required(settings, "127.0.0.1"), Error);
  AuthSettings on_without_keys;
  on_without_keys.mode = "on";
  try {
    auth_required(on_without_keys, "127.0.0.1");
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("api_keys_file"), std::string::npos);
  }
  on_without_keys.jwt_config_file = "jwt.yaml";
  EXPECT_TRUE(auth_required(on_without_keys, "127.0.0.1"));
}

}  // namespace
}  // namespace autoglm::server
