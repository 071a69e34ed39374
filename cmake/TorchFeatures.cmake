# What the libtorch we build against offers. Sets TRAINMETER_TORCH_CUDA (ON when libtorch was
# built with CUDA: its c10_cuda library exists) and TRAINMETER_C10_CUDA_LIBRARY.
set(TRAINMETER_TORCH_CUDA OFF)
find_library(TRAINMETER_C10_CUDA_LIBRARY c10_cuda
             HINTS ${TORCH_INSTALL_PREFIX}/lib ${TORCH_INSTALL_PREFIX}/lib64 NO_DEFAULT_PATH)
if(TRAINMETER_C10_CUDA_LIBRARY AND (TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND OR CUDAToolkit_FOUND))
  set(TRAINMETER_TORCH_CUDA ON)
endif()
message(STATUS "trainmeter: libtorch ${Torch_VERSION}, CUDA: ${TRAINMETER_TORCH_CUDA}")
