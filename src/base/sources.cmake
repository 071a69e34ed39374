# The base layer: the contracts every measurement module and the core implement or use
# (Component and RunContext, diagnostics, the per-step column table, live figures) and the
# statistics primitives (Welford moments, quantile sketches). Above platform, below everything
# else (cmake/CheckLayers.cmake).
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/diagnostics.cpp
  ${CMAKE_CURRENT_LIST_DIR}/stats.cpp)
