trainmeter_embed_file(${TM_GENERATED_DIR}/cpu_tdp_data.cpp kCpuTdpTsv ${PROJECT_SOURCE_DIR}/data/cpu_tdp.tsv)
trainmeter_embed_file(${TM_GENERATED_DIR}/gpu_tdp_data.cpp kGpuTdpTsv ${PROJECT_SOURCE_DIR}/data/gpu_tdp.tsv)
list(APPEND TM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/tdp.cpp
  ${CMAKE_CURRENT_LIST_DIR}/counter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/proc_cpu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rapl.cpp
  ${CMAKE_CURRENT_LIST_DIR}/perf_power.cpp
  ${CMAKE_CURRENT_LIST_DIR}/nvml.cpp
  ${CMAKE_CURRENT_LIST_DIR}/amdsmi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/estimator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/source.cpp
  ${CMAKE_CURRENT_LIST_DIR}/energy.cpp
  ${CMAKE_CURRENT_LIST_DIR}/probe.cpp
  ${TM_GENERATED_DIR}/cpu_tdp_data.cpp
  ${TM_GENERATED_DIR}/gpu_tdp_data.cpp)
