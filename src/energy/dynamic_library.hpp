// Vendor libraries loaded at run time with dlopen (NVML, AMD SMI): the X-macro bodies that
// declare, resolve and reset their function pointers, and the dlopen with its reason. A library
// class lists its symbols as X(name, return type, parameter list) tables, holds `void* handle_`
// and resolves with TM_DL_REQUIRED (appending absent names to a local `std::string missing`) and
// TM_DL_OPTIONAL.
#pragma once

#include <dlfcn.h>

#include <string>

#define TM_DL_MEMBER(name, ret, params) ret(*name) params = nullptr;
#define TM_DL_RESET(name, ret, params) name = nullptr;
#define TM_DL_REQUIRED(name, ret, params)                          \
  name = reinterpret_cast<ret(*) params>(::dlsym(handle_, #name)); \
  if (name == nullptr) missing += std::string(missing.empty() ? "" : ", ") + #name;
#define TM_DL_OPTIONAL(name, ret, params) \
  name = reinterpret_cast<ret(*) params>(::dlsym(handle_, #name));

namespace trainmeter::detail {

/// dlopen(library, RTLD_NOW | RTLD_LOCAL). nullptr when it cannot be loaded, with `reason` set to
/// "cannot load <library> (<dlerror>): <absent>".
void* open_vendor_library(const std::string& library, const char* absent, std::string* reason);

}  // namespace trainmeter::detail
