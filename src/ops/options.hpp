// Per-view options (definitions.options): lock_timeout, statement_timeout, max_retries and
// retry_delay. Validation, merging, and applying the timeouts around an operation.
#pragma once

#include "boundary/scopes.hpp"
#include "catalog/store.hpp"

namespace mv::ops {

// Checks an options object and returns it normalized; null members are kept (meaning "remove"
// when merged). 22023 for an unknown key or a bad value.
Json validate_options(catalog::Store& store, const Json& options);
// base with each member of changes set, or removed where changes has null.
Json merge_options(const Json& base, const Json& changes);

// Milliseconds of a duration option ('5s', '250ms', 1000), or nullopt when absent.
std::optional<int64_t> duration_ms(const Json& options, const char* key);

// Applies the options' lock_timeout (as a GUC) and statement_timeout (as a timer) for its
// lifetime.
class ViewTimeouts {
  public:
    explicit ViewTimeouts(const Json& options);

  private:
    std::optional<pg::GucScope> guc_;
    std::optional<pg::StatementTimeoutScope> statement_;
};

}  // namespace mv::ops
