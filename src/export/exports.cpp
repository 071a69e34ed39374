#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <fmt/format.h>

#include "base/values.hpp"
#include "export/access.hpp"
#include "export/csv.hpp"
#include "export/exports.hpp"
#include "platform/file.hpp"
#include "report/json_io.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::detail {

namespace {

// An emissions.csv grows by one row per run; this bounds what we read back to check it.
constexpr std::size_t kMaxCsvBytes = std::size_t(512) << 20;

std::string append_csv(const nlohmann::json& report, const std::string& path) {
  int err = 0;
  std::string existing;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
    auto text = read_text_file(path, kMaxCsvBytes + 1, &err);
    if (!text) return path + ": cannot read: " + errno_text(err);
    if (text->size() > kMaxCsvBytes)
      return fmt::format("{}: larger than {} bytes", path, kMaxCsvBytes);
    existing = std::move(*text);
  }
  std::string out;
  if (existing.empty()) {
    out = csv_header_line();
  } else {
    const CsvTable t = parse_csv(existing, path);
    if (!t.error.empty()) return t.error + "; not appending";
    if (t.rows.empty() || t.rows.front() != csv_columns())
      return path + ": line 1: the header is not CodeCarbon's emissions.csv columns; not appending";
    if (existing.back() != '\n')
      return path + ": last line is not terminated (truncated?); not appending";
  }
  out += csv_row_line(report);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return path + ": cannot open: " + errno_text(errno);
  if (const int e = write_all(fd, out.data(), out.size()); e != 0) {
    ::close(fd);
    return path + ": cannot write: " + errno_text(e);
  }
  if (::close(fd) != 0) return path + ": cannot close: " + errno_text(errno);
  return "";
}

}  // namespace

std::string export_path(const std::string& report_path, const std::string& format) {
  const ExportFormat* f = find_export_format(format);
  return beside_report(report_path, std::string(f != nullptr ? f->suffix : ".html"));
}

std::string export_text(const nlohmann::json& report, const std::string& format) {
  if (format == "csv") return csv_header_line() + csv_row_line(report);
  if (format == "prom") return prometheus_text(report);
  if (format == "trace")
    return chrome_trace(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
           "\n";
  if (format == "html") return html_page(report);
  throw Error(
      fmt::format("unknown export format '{}'; accepted: {}", format, export_format_names(", ")));
}

std::string write_export(const nlohmann::json& report, const std::string& format,
                         const std::string& path) noexcept {
  try {
    if (find_export_format(format) == nullptr)
      return fmt::format("unknown export format '{}'; accepted: {}", format,
                         export_format_names(", "));
    if (format == "csv") return append_csv(report, path);
    return write_file_atomic(path, export_text(report, format));
  } catch (const std::exception& e) {
    return fmt::format("{}: cannot export {}: {}", path, format, e.what());
  }
}

std::string write_export_streamed(const nlohmann::json& sections, const StepSource& steps,
                                  const std::string& format, const std::string& path) noexcept {
  try {
    const ExportFormat* f = find_export_format(format);
    if (f == nullptr || !f->needs_steps)
      return fmt::format("{}: the {} export does not read steps", path, format);
    using Writer = std::string (*)(const nlohmann::json&, const StepSource&,
                                   const std::function<void(const std::string&)>&);
    const Writer writer = format == "trace" ? write_trace_streamed : write_html_streamed;
    if (path == "-") {
      return writer(sections, steps, [](const std::string& text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
      });
    }
    AtomicFile file;
    if (!file.open(path)) return file.error();
    std::string error =
        writer(sections, steps, [&](const std::string& text) { file.append(text); });
    if (error.empty() && !file.error().empty()) error = file.error();
    if (error.empty() && !file.commit()) error = file.error();
    return error;
  } catch (const std::exception& e) {
    return fmt::format("{}: cannot export {}: {}", path, format, e.what());
  }
}

}  // namespace trainmeter::detail
