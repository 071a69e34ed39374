#include "report/schema.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/report_keys.hpp"

extern const char kReportSchemaJson[];
extern const std::size_t kReportSchemaJson_size;

namespace trainmeter::detail {

namespace {

class Validator {
 public:
  Validator(const nlohmann::json& root, std::size_t max_errors) : root_(root), max_(max_errors) {}

  bool check(const nlohmann::json& doc, const nlohmann::json& schema, const std::string& where,
             std::vector<std::string>* errors) {
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return true;
      return fail(errors, where, "no value allowed here");
    }
    if (!schema.is_object()) return true;
    bool ok = true;
    if (auto it = schema.find("$ref"); it != schema.end()) {
      const nlohmann::json* target = resolve(it->get<std::string>());
      if (target == nullptr)
        return fail(errors, where, "unresolvable $ref " + it->get<std::string>());
      if (!check(doc, *target, where, errors)) ok = false;
    }
    if (auto it = schema.find("type"); it != schema.end()) {
      bool any = false;
      if (it->is_string()) {
        any = has_type(doc, it->get<std::string>());
      } else {
        for (const auto& t : *it) any = any || has_type(doc, t.get<std::string>());
      }
      if (!any)
        return fail(errors, where, "expected type " + it->dump() + ", got " + type_name(doc));
    }
    if (auto it = schema.find("const"); it != schema.end() && doc != *it)
      ok = fail(errors, where, "expected " + it->dump());
    if (auto it = schema.find("enum"); it != schema.end()) {
      bool found = false;
      for (const auto& v : *it) found = found || v == doc;
      if (!found) ok = fail(errors, where, "value " + doc.dump() + " not one of " + it->dump());
    }
    if (doc.is_number()) {
      const double x = doc.get<double>();
      if (auto it = schema.find("minimum"); it != schema.end() && x < it->get<double>())
        ok = fail(errors, where, "below minimum " + it->dump());
      if (auto it = schema.find("maximum"); it != schema.end() && x > it->get<double>())
        ok = fail(errors, where, "above maximum " + it->dump());
    }
    if (doc.is_object()) {
      if (auto it = schema.find("required"); it != schema.end())
        for (const auto& key : *it)
          if (!doc.contains(key.get<std::string>()))
            ok = fail(errors, where, "missing required key \"" + key.get<std::string>() + "\"");
      // Our extension (draft-07 validators ignore it): each list of keys holds non-decreasing
      // numbers, e.g. min <= p50 <= ... <= max; null or absent members are skipped. A relative
      // slack of 1e-9 absorbs floating-point rounding of means.
      if (auto it = schema.find("x-nondecreasing"); it != schema.end() && it->is_array())
        for (const auto& chain : *it) {
          const nlohmann::json* prev = nullptr;
          std::string prev_key;
          for (const auto& key : chain) {
            const auto v = doc.find(key.get<std::string>());
            if (v == doc.end() || !v->is_number()) continue;
            if (prev != nullptr) {
              const double a = prev->get<double>(), b = v->get<double>();
              if (a > b + 1e-9 * std::max(std::fabs(a), std::fabs(b)))
                ok = fail(errors, where,
                          fmt::format("{} ({}) is above {} ({}); expected {} <= {}", prev_key,
                                      prev->dump(), key.get<std::string>(), v->dump(), prev_key,
                                      key.get<std::string>()));
            }
            prev = &*v;
            prev_key = key.get<std::string>();
          }
        }
      const auto props = schema.find("properties");
      const auto additional = schema.find("additionalProperties");
      for (auto kv = doc.begin(); kv != doc.end(); ++kv) {
        const std::string child = where + "/" + escape(kv.key());
        if (props != schema.end() && props->contains(kv.key())) {
          if (!check(kv.value(), (*props)[kv.key()], child, errors)) ok = false;
        } else if (additional != schema.end()) {
          if (!check(kv.value(), *additional, child, errors)) ok = false;
        }
      }
    }
    if (doc.is_array()) {
      if (auto it = schema.find(rk::items); it != schema.end()) {
        std::size_t i = 0;
        for (const auto& item : doc) {
          if (!check(item, *it, where + "/" + std::to_string(i++), errors)) ok = false;
          if (errors != nullptr && errors->size() >= max_) return false;
        }
      }
    }
    if (auto it = schema.find("oneOf"); it != schema.end()) {
      int matches = 0;
      for (const auto& sub : *it) matches += check(doc, sub, where, nullptr) ? 1 : 0;
      if (matches == 0)
        ok = fail_branches(doc, *it, where, errors, "matches none of oneOf");
      else if (matches > 1)
        ok = fail(errors, where, "matches several of oneOf");
    }
    if (auto it = schema.find("anyOf"); it != schema.end()) {
      bool any = false;
      for (const auto& sub : *it) any = any || check(doc, sub, where, nullptr);
      if (!any) ok = fail_branches(doc, *it, where, errors, "matches none of anyOf");
    }
    return ok;
  }

 private:
  // No branch of a oneOf/anyOf matched: when exactly one branch has the document's type (the
  // usual "null or an object of this shape"), its own errors say what is wrong; else `what`.
  bool fail_branches(const nlohmann::json& doc, const nlohmann::json& branches,
                     const std::string& where, std::vector<std::string>* errors,
                     const std::string& what) {
    const nlohmann::json* typed = nullptr;
    int typed_count = 0;
    for (const auto& sub : branches) {
      std::vector<std::string> probe;
      Validator inner(root_, 1);
      inner.check(doc, sub, where, &probe);
      const std::string type_error = (where.empty() ? "/" : where) + ": expected type";
      if (!probe.empty() && probe[0].rfind(type_error, 0) == 0) continue;
      typed = &sub;
      ++typed_count;
    }
    if (typed_count != 1 || errors == nullptr) return fail(errors, where, what);
    check(doc, *typed, where, errors);
    return false;
  }

  bool fail(std::vector<std::string>* errors, const std::string& where, const std::string& what) {
    if (errors != nullptr && errors->size() < max_)
      errors->push_back((where.empty() ? "/" : where) + ": " + what);
    return false;
  }
  static std::string escape(const std::string& key) {
    std::string out;
    for (char c : key) {
      if (c == '~')
        out += "~0";
      else if (c == '/')
        out += "~1";
      else
        out += c;
    }
    return out;
  }
  const nlohmann::json* resolve(const std::string& ref) const {
    if (ref.rfind("#/", 0) != 0) return nullptr;
    try {
      const nlohmann::json& target = root_.at(nlohmann::json::json_pointer(ref.substr(1)));
      return &target;
    } catch (...) {
      return nullptr;
    }
  }
  static bool has_type(const nlohmann::json& doc, const std::string& t) {
    if (t == "object") return doc.is_object();
    if (t == "array") return doc.is_array();
    if (t == "string") return doc.is_string();
    if (t == "boolean") return doc.is_boolean();
    if (t == "null") return doc.is_null();
    if (t == "number") return doc.is_number();
    if (t == "integer") {
      if (doc.is_number_integer()) return true;
      if (doc.is_number_float()) {
        const double x = doc.get<double>();
        return std::isfinite(x) && std::floor(x) == x;
      }
      return false;
    }
    return false;
  }
  static std::string type_name(const nlohmann::json& doc) {
    if (doc.is_number_integer()) return "integer";
    if (doc.is_number()) return "number";
    return doc.type_name();
  }

  const nlohmann::json& root_;
  std::size_t max_;
};

}  // namespace

const nlohmann::json& report_schema() {
  static const nlohmann::json schema =
      nlohmann::json::parse(std::string(kReportSchemaJson, kReportSchemaJson_size));
  return schema;
}

std::vector<std::string> validate_schema(const nlohmann::json& doc, const nlohmann::json& schema,
                                         std::size_t max_errors) {
  std::vector<std::string> errors;
  Validator v(schema, max_errors);
  v.check(doc, schema, "", &errors);
  return errors;
}

}  // namespace trainmeter::detail
