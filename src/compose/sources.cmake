# The composition of a session (above export, below cli): which built-in components every
# session has, in report order. The core declares what it needs (core/composition.hpp) and this
# layer defines it, so that no include points from core up.
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/components.cpp)
