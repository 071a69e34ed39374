# Outputs: the JSONL stream, progress line and exports (CSV, Prometheus, Chrome trace, HTML),
# stream recovery and report comparison.
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/access.cpp
  ${CMAKE_CURRENT_LIST_DIR}/csv.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prometheus.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trace.cpp
  ${CMAKE_CURRENT_LIST_DIR}/html.cpp
  ${CMAKE_CURRENT_LIST_DIR}/exports.cpp
  ${CMAKE_CURRENT_LIST_DIR}/outputs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/recover.cpp
  ${CMAKE_CURRENT_LIST_DIR}/compare.cpp)
list(APPEND TM_CORE_SOURCES ${CMAKE_CURRENT_LIST_DIR}/merge.cpp)  # distributed: trainmeter merge / gather
# The live metrics endpoint is served by cpp-httplib (Debian: libcpp-httplib-dev), found through
# its pkg-config file; without it the build still works and metrics_port is refused at
# construction. Its flags apply to metrics_server.cpp only.
list(APPEND TM_CORE_SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_server.cpp)
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(TM_HTTPLIB QUIET cpp-httplib)
endif()
if(TM_HTTPLIB_FOUND)
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/metrics_server.cpp PROPERTIES
    COMPILE_DEFINITIONS TRAINMETER_WITH_HTTPLIB=1
    COMPILE_OPTIONS "${TM_HTTPLIB_CFLAGS_OTHER}"
    INCLUDE_DIRECTORIES "${TM_HTTPLIB_INCLUDE_DIRS}")
  list(APPEND TM_CORE_LINK_LIBRARIES ${TM_HTTPLIB_LINK_LIBRARIES})
  set(TRAINMETER_HAVE_HTTPLIB ON CACHE INTERNAL "cpp-httplib found (the metrics endpoint is built)")
else()
  message(STATUS "cpp-httplib not found: no live metrics endpoint (metrics_port is refused)")
  set(TRAINMETER_HAVE_HTTPLIB OFF CACHE INTERNAL "cpp-httplib found (the metrics endpoint is built)")
endif()
