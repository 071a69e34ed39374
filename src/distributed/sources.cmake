# The c10d gather of per-rank figures into the merged report (layer 6: libtorch's c10d and the
# merge of export/). Part of trainmeter::torch; it can be left out against a libtorch whose c10d
# API this code does not support.
option(TRAINMETER_TORCH_DISTRIBUTED "Build the c10d gather of per-rank reports" ON)
if(TRAINMETER_TORCH_DISTRIBUTED)
  list(APPEND TM_TORCH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/gather.cpp)
endif()
