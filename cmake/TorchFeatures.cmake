# What the libtorch we build against offers. Sets TRAINMETER_TORCH_CUDA (ON when libtorch was
# built with CUDA and CUDA's runtime is found) and TRAINMETER_TORCH_VERSION.
set(TRAINMETER_TORCH_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(TRAINMETER_TORCH_CUDA ON)
endif()
message(STATUS "trainmeter: libtorch ${Torch_VERSION}, CUDA: ${TRAINMETER_TORCH_CUDA}")
