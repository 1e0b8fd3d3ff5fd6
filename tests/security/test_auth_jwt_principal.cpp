// JWT claims -> Principal: the role claim is required and must name a role; subject, scopes and
// models carry over.
#include <gtest/gtest.h>

#include "security/auth_jwt_principal.h"

namespace autoglm::security {
namespace {

JwtClaims claims(std::string role) {
  JwtClaims c;
  c.subject = "alice";
  c.issuer = "https://issuer.example";
  c.role = std::move(role);
  c.scopes = {"chat", "tokenize"};
  c.models = {"glm-tiny"};
  return c;
}

TEST(JwtPrincipal, MapsEveryClaim) {
  JwtPrincipalResult result = principal_from_jwt_claims(claims("user"));
  ASSERT_TRUE(std::holds_alternative<Principal>(result));
  const Principal& principal = std::get<Principal>(result);
  EXPECT_EQ(principal.id, "alice");
  EXPECT_EQ(principal.kind, CredentialKind::kJwt);
  EXPECT_EQ(principal.role, Role::kUser);
  EXPECT_EQ(principal.scopes, (std::vector<std::string>{"chat", "tokenize"}));
  EXPECT_TRUE(principal.may_use_model("glm-tiny"));
  EXPECT_FALSE(principal.may_use_model("other"));
  EXPECT_EQ(principal.tenant, "alice");
}

TEST(JwtPrincipal, EveryRole) {
  EXPECT_EQ(std::get<Principal>(principal_from_jwt_claims(claims("admin"))).role, Role::kAdmin);
  EXPECT_EQ(std::get<Principal>(principal_from_jwt_claims(claims("metrics"))).role, Role::kMetrics);
}

TEST(JwtPrincipal, NoModelsClaimMeansEveryModel) {
  JwtClaims c = claims("user");
  c.models.clear();
  EXPECT_TRUE(std::get<Principal>(principal_from_jwt_claims(c)).may_use_model("any"));
}

TEST(JwtPrincipal, MissingOrUnknownRoleGrantsNothing) {
  EXPECT_EQ(std::get<std::string>(principal_from_jwt_claims(claims(""))),
            "token has no role claim");
  EXPECT_TRUE(std::holds_alternative<std::string>(principal_from_jwt_claims(claims("root"))));
  EXPECT_TRUE(std::holds_alternative<std::string>(principal_from_jwt_claims(claims("ADMIN"))));
  JwtClaims no_subject = claims("user");
  no_subject.subject.clear();
  EXPECT_TRUE(std::holds_alternative<std::string>(principal_from_jwt_claims(no_subject)));
}

}  // namespace
}  // namespace autoglm::security
