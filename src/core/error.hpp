// The error type every matviews module throws: a SQLSTATE with message, detail, hint and context,
// as PostgreSQL reports them. The boundary turns it into ereport at entry points and into an
// error response inside operations; PostgreSQL's own errors arrive as the same type (PgError).
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace mv {

// SQLSTATEs matviews raises itself, as five-character codes.
namespace sqlstate {
inline constexpr const char* successful_completion = "00000";
inline constexpr const char* invalid_name = "42602";
inline constexpr const char* syntax_error = "42601";
inline constexpr const char* nonstandard_use_of_escape_character = "22P06";
inline constexpr const char* undefined_table = "42P01";
inline constexpr const char* undefined_object = "42704";
inline constexpr const char* duplicate_table = "42P07";
inline constexpr const char* duplicate_object = "42710";
inline constexpr const char* wrong_object_type = "42809";
inline constexpr const char* insufficient_privilege = "42501";
inline constexpr const char* invalid_schema_name = "3F000";
inline constexpr const char* invalid_parameter_value = "22023";
inline constexpr const char* null_value_not_allowed = "22004";
inline constexpr const char* object_not_in_prerequisite_state = "55000";
inline constexpr const char* object_in_use = "55006";
inline constexpr const char* lock_not_available = "55P03";
inline constexpr const char* dependent_objects_still_exist = "2BP01";
inline constexpr const char* feature_not_supported = "0A000";
inline constexpr const char* invalid_sql_statement_name = "26000";
inline constexpr const char* query_canceled = "57014";
inline constexpr const char* serialization_failure = "40001";
inline constexpr const char* datetime_field_overflow = "22008";
inline constexpr const char* out_of_memory = "53200";
inline constexpr const char* internal_error = "XX000";
inline constexpr const char* sqlclient_unable_to_establish_sqlconnection = "08001";
inline constexpr const char* fdw_error = "HV000";
}  // namespace sqlstate

// What an error says, field by field, as in PostgreSQL's ErrorData.
struct ErrorInfo {
    std::string sqlstate = sqlstate::internal_error;
    std::string message;
    std::string detail;
    std::string hint;
    std::string context;
};

class Error : public std::exception {
  public:
    Error(std::string code, std::string message) {
        info_.sqlstate = std::move(code);
        info_.message = std::move(message);
    }
    explicit Error(ErrorInfo info) : info_(std::move(info)) {}

    Error& detail(std::string d) {
        info_.detail = std::move(d);
        return *this;
    }
    Error& hint(std::string h) {
        info_.hint = std::move(h);
        return *this;
    }
    Error& context(std::string c) {
        info_.context = std::move(c);
        return *this;
    }

    const ErrorInfo& info() const { return info_; }
    const std::string& sqlstate() const { return info_.sqlstate; }
    const char* what() const noexcept override { return info_.message.c_str(); }

  private:
    ErrorInfo info_;
};

}  // namespace mv
