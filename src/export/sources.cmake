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
