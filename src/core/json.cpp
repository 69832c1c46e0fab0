// The JSON value's operations: member access and compact serialization.
#include "core/json.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mv {

Json Json::string_array(const std::vector<std::string>& items) {
    // Builds a JSON array of strings.
    Array a;
    a.reserve(items.size());
    for (const auto& s : items) a.emplace_back(s);
    return Json(std::move(a));
}

int64_t Json::as_int() const {
    // Returns the number as an integer; doubles are truncated.
    if (is_double()) return static_cast<int64_t>(std::get<double>(v_));
    return std::get<int64_t>(v_);
}

double Json::as_double() const {
    // Returns the number as a double.
    if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
    return std::get<double>(v_);
}

Json& Json::set(std::string_view key, Json value) {
    // Replaces or appends a member of an object.
    auto& o = std::get<Object>(v_);
    for (auto& [k, v] : o) {
        if (k == key) {
            v = std::move(value);
            return *this;
        }
    }
    o.emplace_back(std::string(key), std::move(value));
    return *this;
}

Json& Json::push(Json value) {
    // Appends an element to an array.
    std::get<Array>(v_).push_back(std::move(value));
    return *this;
}

const Json* Json::find(std::string_view key) const {
    // Looks a member up by key.
    if (!is_object()) return nullptr;
    for (const auto& [k, v] : std::get<Object>(v_))
        if (k == key) return &v;
    return nullptr;
}

Json* Json::find(std::string_view key) {
    // Looks a member up by key, for modification.
    return const_cast<Json*>(static_cast<const Json*>(this)->find(key));
}

bool Json::erase(std::string_view key) {
    // Removes a member from an object.
    if (!is_object()) return false;
    auto& o = std::get<Object>(v_);
    for (auto it = o.begin(); it != o.end(); ++it) {
        if (it->first == key) {
            o.erase(it);
            return true;
        }
    }
    return false;
}

size_t Json::size() const {
    // Number of elements or members; 0 for scalars.
    if (is_array()) return as_array().size();
    if (is_object()) return as_object().size();
    return 0;
}

namespace {

void dump_string(const std::string& s, std::string& out) {
    // Appends s as a JSON string literal.
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

void dump_value(const Json& j, std::string& out) {
    // Appends the compact serialization of j.
    if (j.is_null()) {
        out += "null";
    } else if (j.is_bool()) {
        out += j.as_bool() ? "true" : "false";
    } else if (j.is_int()) {
        out += std::to_string(j.as_int());
    } else if (j.is_double()) {
        double d = j.as_double();
        if (!std::isfinite(d)) {
            out += "null";
        } else {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", d);
            out += buf;
        }
    } else if (j.is_string()) {
        dump_string(j.as_string(), out);
    } else if (j.is_array()) {
        out.push_back('[');
        bool first = true;
        for (const auto& e : j.as_array()) {
            if (!first) out.push_back(',');
            first = false;
            dump_value(e, out);
        }
        out.push_back(']');
    } else {
        out.push_back('{');
        bool first = true;
        for (const auto& [k, v] : j.as_object()) {
            if (!first) out.push_back(',');
            first = false;
            dump_string(k, out);
            out.push_back(':');
            dump_value(v, out);
        }
        out.push_back('}');
    }
}

}  // namespace

std::string Json::dump() const {
    // Serializes the value as compact JSON.
    std::string out;
    dump_value(*this, out);
    return out;
}

}  // namespace mv
