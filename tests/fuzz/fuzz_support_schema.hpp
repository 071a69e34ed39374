// Validating one report section against its definition in the compiled-in schema.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/schema.hpp"

namespace trainmeter::fuzz {

inline std::vector<std::string> section_errors(const nlohmann::json& value,
                                               const char* definition) {
  static const nlohmann::json wrappers = [] {
    nlohmann::json w = nlohmann::json::object();
    for (const char* name : {"energy", "memory", "carbon", "cost"}) {
      nlohmann::json s;
      s["definitions"] = detail::report_schema()["definitions"];
      s["$ref"] = std::string("#/definitions/") + name;
      w[name] = s;
    }
    return w;
  }();
  return detail::validate_schema(value, wrappers.at(definition));
}

}  // namespace trainmeter::fuzz
