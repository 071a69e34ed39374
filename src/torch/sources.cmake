# trainmeter::torch. Few translation units on purpose: each one that includes libtorch headers
# takes tens of seconds and ~1.5 GB to compile.
list(APPEND TM_TORCH_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/describe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ops.cpp)
list(APPEND TM_TORCH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/gather.cpp)  # distributed: c10d gather
