// See auth_jwt_principal.h. Thread ownership: pure function, any thread.
#include "security/auth_jwt_principal.h"

#include "security/api_keys.h"

namespace autoglm::security {

JwtPrincipalResult principal_from_jwt_claims(const JwtClaims& claims) {
  if (claims.role.empty()) return std::string("token has no role claim");
  std::optional<Role> role = parse_role(claims.role);
  if (!role) return std::string("token role is not admin, user or metrics");
  if (claims.subject.empty()) return std::string("token has no subject");
  Principal principal;
  principal.id = claims.subject;
  principal.kind = CredentialKind::kJwt;
  principal.role = *role;
  principal.allowed_models = claims.models;
  principal.scopes = claims.scopes;
  principal.tenant = claims.subject;
  return principal;
}

}  // namespace autoglm::security
