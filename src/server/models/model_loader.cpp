// See model_loader.h. The integrity checks moved here from serve.cpp so that every model, the
// first one at start-up or another one later, is checked the same way.
// Thread ownership: the registry's loader thread (and the verification's own threads).
#include "server/models/model_loader.h"

#include <future>

#include "core/error.h"
#include "security/signing_gate.h"
#include "server/circuit_breaker.h"
#include "server/json_log.h"

namespace autoglm::server::models {
namespace {

// Throws, after a log line and an audit record, unless the model directory matched its signed
// manifest. The model then stays failed with the reason.
void require_intact_model(const security::VerificationReport& report, const ModelSpec& spec,
                          security::AuditSink* sink) {
  if (report.ok()) {
    log_json(LogLevel::kInfo, "model integrity verified",
             {{"model", spec.dir},
              {"model_name", spec.name},
              {"signer", report.signer},
              {"bytes", report.bytes_hashed},
              {"hash_s", report.hash_seconds}});
    return;
  }
  nlohmann::json problems = nlohmann::json::array();
  for (const security::IntegrityProblem& problem : report.problems) {
    problems.push_back({{"kind", security::integrity_problem_name(problem.kind)},
                        {"path", problem.path},
                        {"message", problem.message}});
  }
  log_json(LogLevel::kError, "model integrity check failed: refusing to serve",
           {{"model", spec.dir}, {"model_name", spec.name}, {"problems", problems}});
  if (sink != nullptr) {
    security::AuditEvent event;
    event.action = "integrity_failure";
    event.user_id = "system";
    event.resource = spec.name;
    event.status = "denied";
    event.detail = std::string(security::integrity_problem_name(report.problems.front().kind));
    sink->record(event);
  }
  fail(ErrorCode::kInvalidModel, "model integrity: " + report.summary());
}

// Starts verifying the directory: a missing or badly signed manifest is refused here, before
// any loading; the hashing then runs beside the load. Invalid future: signing not required.
std::future<security::VerificationReport> start_integrity_check(const LoaderSettings& settings,
                                                                const ModelSpec& spec) {
  if (!settings.require_signed_models) return {};
  auto keys = security::load_trusted_keys(security::split_key_list(settings.trusted_keys));
  auto verification = security::start_model_verification(spec.dir, keys);
  if (verification.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    require_intact_model(verification.get(), spec, settings.audit_sink.get());
  }
  return verification;
}

}  // namespace

LoadFunction make_engine_loader(LoaderSettings settings) {
  return [settings](const ModelSpec& spec, const std::function<void()>& warming_up) {
    auto integrity = start_integrity_check(settings, spec);
    EngineOptions options = settings.engine;
    options.model_path = spec.dir;
    auto engine = std::make_shared<Engine>(options);
    // The loaded model is committed only once its files matched the signed manifest.
    if (integrity.valid()) require_intact_model(integrity.get(), spec, settings.audit_sink.get());
    LoadedModel loaded;
    loaded.chat_template = find_model_chat_template(spec.dir);
    warming_up();
    if (settings.warmup) engine->generate(probe_request());  // the breaker's probe, too
    loaded.engine = std::move(engine);
    return loaded;
  };
}

}  // namespace autoglm::server::models
