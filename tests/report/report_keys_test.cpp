// The report's keys are spelled once in C++ (src/base/report_keys.hpp): the list there equals the
// property names of docs/report.schema.json, and no file under src/ writes one of them as a
// string literal, alone ("energy_j") or in a path made only of keys ("/energy/total_j",
// "run.duration_s"). Comments and raw strings (the HTML page's script) are not C++ spellings and
// are skipped; so is the configuration key table (core/config.cpp), the one place for
// configuration keys, and a line that says "not a report key" in a comment (a sysfs file called
// "name", the HTTP path "/metrics").

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/report_keys.hpp"

namespace fs = std::filesystem;
namespace rk = trainmeter::rk;

namespace {

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void collect_properties(const nlohmann::json& node, std::set<std::string>& out) {
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "properties" && it->is_object())
        for (auto p = it->begin(); p != it->end(); ++p) out.insert(p.key());
      collect_properties(*it, out);
    }
  } else if (node.is_array()) {
    for (const auto& item : node) collect_properties(item, out);
  }
}

bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// True when `text` has `sep` and every non-empty segment between them is a key: "/energy",
/// "run.duration_s", "phases." (a path being built); not a lone ".rank" (a file suffix).
bool all_keys(const std::string& text, char sep, const std::set<std::string>& keys) {
  if (text.find(sep) == std::string::npos) return false;
  std::size_t parts = 0, begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find(sep, begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) {
      if (keys.count(text.substr(begin, end - begin)) == 0) return false;
      ++parts;
    }
    begin = end + 1;
  }
  // One segment after a leading '.' is a file suffix (".rank3", ".merged"), not a figure's name.
  return parts > 1 || (parts == 1 && (sep == '/' || text[0] != '.'));
}

struct Spelling {
  int line;
  std::string literal;
};

/// The ordinary string literals of C++ source `text` that spell report keys.
std::vector<Spelling> key_spellings(const std::string& text, const std::set<std::string>& keys) {
  std::vector<Spelling> found;
  const size_t n = text.size();
  int line = 1;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
    } else if (c == '/' && i + 1 < n && text[i + 1] == '/') {
      while (i < n && text[i] != '\n') ++i;
      ++line;
    } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
      const size_t end = text.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? n : end + 2;
      for (; i < stop; ++i)
        if (text[i] == '\n') ++line;
      --i;
    } else if (c == '\'') {
      if (i > 0 && is_ident(text[i - 1])) continue;  // a digit separator: 1'000
      for (++i; i < n && text[i] != '\''; ++i)
        if (text[i] == '\\') ++i;
    } else if (c == '"') {
      size_t p = i;
      while (p > 0 && is_ident(text[p - 1])) --p;
      const std::string prefix = text.substr(p, i - p);
      if (!prefix.empty() && prefix.back() == 'R') {  // raw string: R"delim( ... )delim"
        const size_t open = text.find('(', i);
        const std::string close = ")" + text.substr(i + 1, open - i - 1) + "\"";
        const size_t end = text.find(close, open);
        const size_t stop = end == std::string::npos ? n : end + close.size();
        for (; i < stop; ++i)
          if (text[i] == '\n') ++line;
        --i;
        continue;
      }
      std::string content;
      size_t j = i + 1;
      for (; j < n && text[j] != '"'; ++j) {
        if (text[j] == '\\') content += text[j++];
        content += text[j];
      }
      const bool suffixed = j + 1 < n && is_ident(text[j + 1]);
      const size_t eol = text.find('\n', j);
      const bool marked = text.substr(j, eol == std::string::npos ? std::string::npos : eol - j)
                              .find("not a report key") != std::string::npos;
      if (prefix.empty() && !suffixed && !marked && !content.empty() &&
          (keys.count(content) != 0 || all_keys(content, '/', keys) ||
           all_keys(content, '.', keys)))
        found.push_back({line, content});
      i = j;
    }
  }
  return found;
}

std::set<std::string> table_keys() {
  std::set<std::string> keys;
  for (std::string_view k : rk::kAll) keys.insert(std::string(k));
  return keys;
}

}  // namespace

TEST_CASE("report keys: the table is the schema's property names", "[report][keys]") {
  const auto schema =
      nlohmann::json::parse(read_all(fs::path(TRAINMETER_SOURCE_DIR) / "docs/report.schema.json"));
  std::set<std::string> in_schema;
  collect_properties(schema, in_schema);
  const std::set<std::string> in_table = table_keys();
  std::vector<std::string> missing, extra;
  for (const auto& k : in_schema)
    if (in_table.count(k) == 0) missing.push_back(k);
  for (const auto& k : in_table)
    if (in_schema.count(k) == 0) extra.push_back(k);
  INFO("in the schema, not in src/base/report_keys.hpp: " << nlohmann::json(missing).dump());
  INFO("in src/base/report_keys.hpp, not in the schema: " << nlohmann::json(extra).dump());
  CHECK(missing.empty());
  CHECK(extra.empty());
  CHECK(in_table.size() == std::size(rk::kAll));  // no key listed twice
  CHECK(std::string(rk::try_) == "try");
  CHECK(rk::pointer(rk::energy, rk::total_j) == "/energy/total_j");
  CHECK(rk::dotted(rk::run, rk::duration_s) == "run.duration_s");
}

TEST_CASE("report keys: the scanner finds spellings and skips what is not one", "[report][keys]") {
  const std::set<std::string> keys = table_keys();
  const std::string source = R"src(
    j["energy_j"] = 1;                        // line 2: found
    // "energy_j" in a comment                // skipped
    /* "co2e_kg" in a block
       comment */
    auto p = "/energy/total_j";               // line 6: a pointer of keys
    auto d = "run.duration_s" + "phases.";    // line 7: dotted names of keys, twice
    auto f = "report.json" + ".rank";         // not keys; a file suffix
    auto s = "energy_j"sv;                    // a suffixed literal: not ordinary
    auto u = u8"energy_j";                    // a prefixed literal
    auto r = R"x(  "energy_j"  )x";           // a raw string
    int n = 1'000; char q = '"'; auto e = "\"energy\"";
    x.value("samples", 0);                    // line 13: found
    read(dir + "/name");  // sysfs, not a report key
  )src";
  const auto found = key_spellings(source, keys);
  REQUIRE(found.size() == 5);
  CHECK(found[0].line == 2);
  CHECK(found[0].literal == "energy_j");
  CHECK(found[1].line == 6);
  CHECK(found[2].line == 7);
  CHECK(found[3].literal == "phases.");
  CHECK(found[4].line == 13);
  CHECK(found[4].literal == "samples");
}

TEST_CASE("report keys: no file under src/ spells a report key", "[report][keys]") {
  const std::set<std::string> keys = table_keys();
  const fs::path src = fs::path(TRAINMETER_SOURCE_DIR) / "src";
  const std::set<std::string> exempt = {"base/report_keys.hpp", "core/config.cpp"};
  std::vector<std::string> spellings;
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp" && ext != ".h")) continue;
    const std::string rel = fs::relative(entry.path(), src).generic_string();
    if (exempt.count(rel) != 0) continue;
    ++files;
    for (const auto& s : key_spellings(read_all(entry.path()), keys))
      spellings.push_back("src/" + rel + ":" + std::to_string(s.line) + ": \"" + s.literal +
                          "\" (use rk:: from base/report_keys.hpp)");
  }
  std::string list;
  for (const auto& s : spellings) list += s + "\n";
  INFO(list);
  CHECK(files > 100);
  CHECK(spellings.empty());
}
