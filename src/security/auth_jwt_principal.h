// Maps a verified JWT's claims to the caller's Principal: the subject is the id, the role
// claim (required) the role, the scope claim the scopes and the models claim the allow-list.
// Thread ownership: pure function, any thread.
#pragma once

#include <string>
#include <variant>

#include "security/jwt_verifier.h"
#include "security/principal.h"

namespace autoglm::security {

// A Principal, or why the claims grant nothing (the caller answers 403: the token is genuine,
// it just carries no usable role).
using JwtPrincipalResult = std::variant<Principal, std::string>;

JwtPrincipalResult principal_from_jwt_claims(const JwtClaims& claims);

}  // namespace autoglm::security
