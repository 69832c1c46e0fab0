// Converts between the C++ Json value and jsonb with PostgreSQL's jsonb API. Each PostgreSQL call
// is guarded on its own; the C++ side of the conversion happens between the calls.
#include "boundary/jsonb.hpp"

extern "C" {
#include "utils/numeric.h"
}

namespace mv::pg {

namespace {

char* palloc_copy(const std::string& s) {
    // A palloc'd, NUL-terminated copy of s.
    const char* data = s.data();
    size_t len = s.size();
    return call([&] { return pnstrdup(data, len); });
}

JsonbValue scalar_value(const Json& j) {
    // The JsonbValue of a scalar Json (strings and numbers palloc'd).
    JsonbValue v{};
    if (j.is_null()) {
        v.type = jbvNull;
    } else if (j.is_bool()) {
        v.type = jbvBool;
        v.val.boolean = j.as_bool();
    } else if (j.is_int()) {
        int64 i = j.as_int();
        v.type = jbvNumeric;
        v.val.numeric = call([&] { return int64_to_numeric(i); });
    } else if (j.is_double()) {
        double d = j.as_double();
        if (!std::isfinite(d)) {
            v.type = jbvNull;
        } else {
            v.type = jbvNumeric;
            v.val.numeric = call([&] {
                return DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(d)));
            });
        }
    } else {
        const std::string& s = j.as_string();
        v.type = jbvString;
        v.val.string.val = palloc_copy(s);
        v.val.string.len = static_cast<int>(s.size());
    }
    return v;
}

JsonbValue* push(JsonbParseState** state, JsonbIteratorToken token, JsonbValue* value) {
    // pushJsonbValue under the guard.
    return call([&] { return pushJsonbValue(state, token, value); });
}

JsonbValue* push_json(JsonbParseState** state, const Json& j, JsonbIteratorToken as) {
    // Pushes j as a value (WJB_VALUE) or array element (WJB_ELEM); returns the finished top-level
    // value when j closes the outermost container.
    if (j.is_object()) {
        push(state, WJB_BEGIN_OBJECT, nullptr);
        for (const auto& [k, v] : j.as_object()) {
            JsonbValue key{};
            key.type = jbvString;
            key.val.string.val = palloc_copy(k);
            key.val.string.len = static_cast<int>(k.size());
            push(state, WJB_KEY, &key);
            push_json(state, v, WJB_VALUE);
        }
        return push(state, WJB_END_OBJECT, nullptr);
    }
    if (j.is_array()) {
        push(state, WJB_BEGIN_ARRAY, nullptr);
        for (const auto& e : j.as_array()) push_json(state, e, WJB_ELEM);
        return push(state, WJB_END_ARRAY, nullptr);
    }
    JsonbValue v = scalar_value(j);
    return push(state, as, &v);
}

Json scalar_json(const JsonbValue& v) {
    // The Json of a scalar JsonbValue.
    switch (v.type) {
        case jbvNull:
            return Json();
        case jbvBool:
            return Json(static_cast<bool>(v.val.boolean));
        case jbvString:
            return Json(std::string(v.val.string.val, v.val.string.len));
        case jbvNumeric: {
            Numeric n = v.val.numeric;
            char* text = call([&] {
                return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
            });
            std::string s(text);
            if (s.find_first_of(".eEN") == std::string::npos) {
                try {
                    return Json(static_cast<long long>(std::stoll(s)));
                } catch (const std::out_of_range&) {
                    // too large for int64: fall through to double
                }
            }
            return Json(std::strtod(s.c_str(), nullptr));  // saturates instead of throwing
        }
        default:
            throw Error(sqlstate::internal_error, "unexpected jsonb scalar type");
    }
}

}  // namespace

Datum to_jsonb(const Json& j) {
    // Builds the jsonb Datum of j.
    JsonbValue* result;
    if (!j.is_object() && !j.is_array()) {
        JsonbValue v = scalar_value(j);
        return call([&] { return PointerGetDatum(JsonbValueToJsonb(&v)); });
    }
    JsonbParseState* state = nullptr;
    result = push_json(&state, j, WJB_VALUE);
    return call([&] { return PointerGetDatum(JsonbValueToJsonb(result)); });
}

Json from_jsonb(Jsonb* jb) {
    // Walks jb with a JsonbIterator and rebuilds it as Json.
    JsonbIterator* it = call([&] { return JsonbIteratorInit(&jb->root); });
    struct Frame {
        Json value;
        std::string key;
        bool raw_scalar = false;
    };
    std::vector<Frame> stack;
    Json done;
    auto attach = [&](Json v) {
        if (stack.empty()) {
            done = std::move(v);
            return;
        }
        Frame& top = stack.back();
        if (top.value.is_object())
            top.value.set(top.key, std::move(v));
        else
            top.value.push(std::move(v));
    };
    JsonbValue v;
    for (;;) {
        JsonbIteratorToken tok = call([&] { return JsonbIteratorNext(&it, &v, false); });
        if (tok == WJB_DONE) break;
        switch (tok) {
            case WJB_BEGIN_OBJECT:
                stack.push_back(Frame{Json::object(), "", false});
                break;
            case WJB_BEGIN_ARRAY:
                stack.push_back(Frame{Json::array(), "", static_cast<bool>(v.val.array.rawScalar)});
                break;
            case WJB_KEY:
                stack.back().key.assign(v.val.string.val, v.val.string.len);
                break;
            case WJB_VALUE:
            case WJB_ELEM:
                attach(scalar_json(v));
                break;
            case WJB_END_OBJECT:
            case WJB_END_ARRAY: {
                Frame f = std::move(stack.back());
                stack.pop_back();
                if (f.raw_scalar && f.value.size() == 1)
                    attach(f.value.as_array()[0]);
                else
                    attach(std::move(f.value));
                break;
            }
            default:
                break;
        }
    }
    return done;
}

}  // namespace mv::pg
