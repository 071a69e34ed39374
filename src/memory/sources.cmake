list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/process_memory.cpp)
