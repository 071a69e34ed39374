trainmeter_embed_file(${TM_GENERATED_DIR}/report_schema.cpp kReportSchemaJson
                      ${PROJECT_SOURCE_DIR}/docs/report.schema.json)
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/json_io.cpp
  ${CMAKE_CURRENT_LIST_DIR}/schema.cpp
  ${CMAKE_CURRENT_LIST_DIR}/builder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/step_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/summary.cpp
  ${CMAKE_CURRENT_LIST_DIR}/findings.cpp
  ${CMAKE_CURRENT_LIST_DIR}/units.cpp
  ${TM_GENERATED_DIR}/report_schema.cpp)
