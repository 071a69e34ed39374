// trainmeter: version macros and the versioned inline namespace.
#pragma once

#define TRAINMETER_VERSION_MAJOR 0
#define TRAINMETER_VERSION_MINOR 1
#define TRAINMETER_VERSION_PATCH 0
#define TRAINMETER_VERSION_STRING "0.1.0"

// Public entities live in namespace trainmeter; internals in trainmeter::detail.
#define TRAINMETER_BEGIN_NAMESPACE namespace trainmeter {
#define TRAINMETER_END_NAMESPACE }

#if defined(_WIN32)
#define TRAINMETER_EXPORT
#else
#define TRAINMETER_EXPORT __attribute__((visibility("default")))
#endif

TRAINMETER_BEGIN_NAMESPACE
/// The library's version, "MAJOR.MINOR.PATCH".
TRAINMETER_EXPORT const char* version() noexcept;
/// The report schema version this build writes (report key `schema_version`).
inline constexpr int kReportSchemaVersion = 1;
TRAINMETER_END_NAMESPACE
