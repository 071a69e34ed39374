# Follows the README's "Use it from your own project" word for word: `cmake --install <build>
# --prefix P`, the CMakeLists.txt block of the README (after its consumer-cmake marker) written
# into a fresh project with main.cpp as my_train.cpp, configured with -DCMAKE_PREFIX_PATH=P,
# built, run; the program checks it recorded its 10 steps.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed (${rc})")
endif()

file(READ ${SOURCE_DIR}/../../../README.md readme)
string(FIND "${readme}" "<!-- consumer-cmake:" marker)
if(marker EQUAL -1)
  message(FATAL_ERROR "README.md has no consumer-cmake marker before its CMakeLists.txt block")
endif()
string(SUBSTRING "${readme}" ${marker} -1 rest)
string(FIND "${rest}" "```cmake\n" open)
math(EXPR open "${open} + 9")
string(SUBSTRING "${rest}" ${open} -1 rest)
string(FIND "${rest}" "```" close)
string(SUBSTRING "${rest}" 0 ${close} cmakelists)
file(WRITE ${WORK_DIR}/project/CMakeLists.txt "${cmakelists}")
configure_file(${SOURCE_DIR}/main.cpp ${WORK_DIR}/project/my_train.cpp COPYONLY)

# Beyond the README's -DCMAKE_PREFIX_PATH=P: a build against a libtorch outside the system paths
# (the 2.x stage's wheel) passes its own prefix and linker flags on, as such a user would.
set(prefix_path "${WORK_DIR}/prefix")
if(EXTRA_PREFIX_PATH)
  string(APPEND prefix_path ";${EXTRA_PREFIX_PATH}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${WORK_DIR}/project -B ${WORK_DIR}/project/build
                        "-DCMAKE_PREFIX_PATH=${prefix_path}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_LINKER_FLAGS}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/project/build RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "build failed:\n${out}")
endif()
execute_process(COMMAND ${WORK_DIR}/project/build/my_train ${WORK_DIR}/report.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK_DIR}/report.json)
  message(FATAL_ERROR "my_train failed (${rc}): ${out}")
endif()
