# trainmeter::torch. Few translation units on purpose: each one that includes libtorch headers
# takes tens of seconds and ~1.5 GB to compile.
list(APPEND TM_TORCH_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_events.cpp
  ${CMAKE_CURRENT_LIST_DIR}/describe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/instrument.cpp)  # the guard; no libtorch header
# Op accounting (RecordFunction) can be left out, e.g. against a libtorch whose RecordFunction
# API this code does not support (the c10d gather: distributed/sources.cmake).
option(TRAINMETER_TORCH_OPS "Build op accounting (RecordFunction callbacks)" ON)
if(TRAINMETER_TORCH_OPS)
  list(APPEND TM_TORCH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops.cpp)
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/instrument.cpp PROPERTIES
                              COMPILE_DEFINITIONS TRAINMETER_TORCH_OPS=1)
endif()
