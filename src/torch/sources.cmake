# trainmeter::torch. Few translation units on purpose: each one that includes libtorch headers
# takes tens of seconds and ~1.5 GB to compile.
list(APPEND TM_TORCH_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_events.cpp
  ${CMAKE_CURRENT_LIST_DIR}/describe.cpp)
# Op accounting (RecordFunction) and the c10d gather can be left out, e.g. against a libtorch
# whose RecordFunction or c10d API this code does not support.
option(TRAINMETER_TORCH_OPS "Build op accounting (RecordFunction callbacks)" ON)
option(TRAINMETER_TORCH_DISTRIBUTED "Build the c10d gather of per-rank reports" ON)
if(TRAINMETER_TORCH_OPS)
  list(APPEND TM_TORCH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops.cpp)
endif()
if(TRAINMETER_TORCH_DISTRIBUTED)
  list(APPEND TM_TORCH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/gather.cpp)  # distributed: c10d gather
endif()
