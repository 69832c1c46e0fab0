// What the gateway's translation units share (store.cpp, store_worker.cpp): the scope in which
// every statement on matviews' own tables runs.
#pragma once

#include "boundary/scopes.hpp"

namespace mv::catalog {

// Runs internal catalog statements as the extension owner with a pinned search_path; the
// caller's name is kept for the runs.role column.
class AsExtensionOwner {
  public:
    AsExtensionOwner()
        : caller_(pg::role_name(pg::current_role())), role_(pg::extension_owner(), false) {
        guc_.set("search_path", "pg_catalog, pg_temp");
    }
    const std::string& caller() const { return caller_; }

  private:
    std::string caller_;
    pg::RoleScope role_;
    pg::GucScope guc_;
};

}  // namespace mv::catalog
