#include "energy/tdp.hpp"

#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <string_view>
#include <vector>

extern const char kCpuTdpTsv[];
extern const std::size_t kCpuTdpTsv_size;
extern const char kGpuTdpTsv[];
extern const std::size_t kGpuTdpTsv_size;

namespace trainmeter::detail {
namespace {

using Tokens = std::vector<std::string>;

Tokens split_tokens(const std::string& text) {
  Tokens out;
  std::string cur;
  for (char c : text) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void erase_all(std::string& s, std::string_view what) {
  for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos))
    s.replace(pos, what.size(), " ");
}

// "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" and "AMD EPYC 7763 64-Core Processor" both
// reduce to the table's spelling: vendor marks, clock suffix, "N-Core Processor", "CPU",
// "Processor" and "12th Gen" are noise added by /proc/cpuinfo, not part of the model.
Tokens normalise_cpu(const std::string& name) {
  std::string s = lower(name);
  if (std::size_t at = s.find('@'); at != std::string::npos) s.resize(at);
  for (std::string_view w : {"(r)", "(tm)", "®", "™"}) erase_all(s, w);
  Tokens raw = split_tokens(s), out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string& t = raw[i];
    if (t == "cpu" || t == "processor") continue;
    if (t.size() > 5 && t.compare(t.size() - 5, 5, "-core") == 0) continue;  // "64-core"
    if (t == "gen" ||
        ((t.size() >= 3) && std::isdigit(static_cast<unsigned char>(t[0])) &&
         (t.compare(t.size() - 2, 2, "th") == 0 || t.compare(t.size() - 2, 2, "nd") == 0 ||
          t.compare(t.size() - 2, 2, "rd") == 0 || t.compare(t.size() - 2, 2, "st") == 0) &&
         i + 1 < raw.size() && raw[i + 1] == "gen"))
      continue;  // "12th Gen"
    out.push_back(t);
  }
  return out;
}

Tokens normalise_gpu(const std::string& name) {
  std::string s = lower(name);
  for (char& c : s)
    if (c == '-' || c == '_' || c == '(' || c == ')' || c == ',') c = ' ';
  Tokens out;
  for (std::string& t : split_tokens(s))
    if (t != "nvidia" && t != "tesla" && t != "geforce") out.push_back(std::move(t));
  return out;
}

struct Row {
  std::string model, source;
  double tdp_w = 0;
  int cores = 0;
  std::vector<Tokens> keys;  // CPU: one contiguous token sequence; GPU: alias token sets
};

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> f;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == '\t') {
      f.emplace_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return f;
}

// Both tables: '#' comments, one header line, tab-separated rows.
std::vector<Row> parse_table(const char* data, std::size_t size, bool gpu) {
  std::vector<Row> rows;
  std::string_view text(data, size);
  bool header_seen = false;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    if (!header_seen) {
      header_seen = true;
      continue;
    }
    auto f = split_fields(line);
    if (f.size() < 5) continue;
    Row r;
    r.model = f[0];
    r.tdp_w = std::strtod(f[1].c_str(), nullptr);
    r.source = f[3] + " (" + f[4] + ")";
    if (gpu) {
      std::string alias;
      for (char c : f[2] + "|") {
        if (c == '|') {
          if (!alias.empty()) r.keys.push_back(normalise_gpu(alias));
          alias.clear();
        } else {
          alias.push_back(c);
        }
      }
    } else {
      r.cores = std::atoi(f[2].c_str());
      r.keys.push_back(normalise_cpu(f[0]));
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

const std::vector<Row>& cpu_rows() {
  static const std::vector<Row> rows = parse_table(kCpuTdpTsv, kCpuTdpTsv_size, false);
  return rows;
}
const std::vector<Row>& gpu_rows() {
  static const std::vector<Row> rows = parse_table(kGpuTdpTsv, kGpuTdpTsv_size, true);
  return rows;
}

bool contains_sequence(const Tokens& hay, const Tokens& needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    std::size_t k = 0;
    while (k < needle.size() && hay[i + k] == needle[k]) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

bool contains_all(const Tokens& hay, const Tokens& needle) {
  if (needle.empty()) return false;
  for (const std::string& n : needle) {
    bool found = false;
    for (const std::string& h : hay) found = found || h == n;
    if (!found) return false;
  }
  return true;
}

TdpMatch to_match(const Row& r) {
  return TdpMatch{r.model, r.tdp_w, r.cores, r.source};
}

}  // namespace

std::optional<TdpMatch> find_cpu_tdp(const std::string& model_name) {
  try {
    const Tokens in = normalise_cpu(model_name);
    // The longest table name found as a contiguous run of the input's tokens wins, so
    // "EPYC 7543P" never matches "EPYC 7543" and vendor prefixes may be absent from the input.
    const Row* best = nullptr;
    std::size_t best_len = 0;
    for (const Row& r : cpu_rows()) {
      const Tokens& key = r.keys.front();
      Tokens without_vendor(key.begin() + (key.size() > 1 ? 1 : 0), key.end());
      std::size_t len = 0;
      if (contains_sequence(in, key))
        len = key.size() + 1;
      else if (contains_sequence(in, without_vendor))
        len = without_vendor.size();
      // At least family and model number ("epyc 7763"): a bare "AMD EPYC" matches nothing.
      if (len > best_len && len >= 2) {
        best = &r;
        best_len = len;
      }
    }
    if (best != nullptr) return to_match(*best);
  } catch (...) {
  }
  return std::nullopt;
}

std::optional<TdpMatch> find_gpu_tdp(const std::string& gpu_name) {
  try {
    const Tokens in = normalise_gpu(gpu_name);
    const Row* best = nullptr;
    std::size_t best_len = 0;
    for (const Row& r : gpu_rows()) {
      for (const Tokens& alias : r.keys) {
        if (contains_all(in, alias) && alias.size() > best_len) {
          best = &r;
          best_len = alias.size();
        }
      }
    }
    if (best != nullptr) return to_match(*best);
  } catch (...) {
  }
  return std::nullopt;
}

}  // namespace trainmeter::detail
