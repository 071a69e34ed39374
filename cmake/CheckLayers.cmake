# The include-direction check (CTest `layering_test`, docs/architecture.md): every
# `#include "module/..."` in src/ must point at the file's own module or a lower layer.
#
#   cmake -DSOURCE_DIR=<folder holding the modules> -P cmake/CheckLayers.cmake
#
# Layers, lowest first. A module may include its own headers, public headers (trainmeter/...),
# generated files and the modules of strictly lower layers; never a module of its own layer or
# above. One table: add a module here when you add a folder to src/.
set(TM_LAYER_platform 0)     # files, host facts: nothing trainmeter-specific
set(TM_LAYER_base 1)         # the contracts modules implement: Component, diagnostics, step table
set(TM_LAYER_memory 2)       # measurement modules
set(TM_LAYER_energy 2)
set(TM_LAYER_carbon 2)
set(TM_LAYER_core 3)         # the session: rings, collector, phases, configuration
set(TM_LAYER_torch 4)        # the libtorch integration, beside the report: both sit on core
set(TM_LAYER_report 4)       # the report model, builder, writers, findings
set(TM_LAYER_export 5)       # stream, CSV, Prometheus, trace, HTML, recover, merge, compare
set(TM_LAYER_distributed 6)  # the c10d gather (libtorch, merge)
set(TM_LAYER_compose 6)      # which components a session has and how its report is written
set(TM_LAYER_cli 7)          # trainmeter subcommands

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "CheckLayers: pass -DSOURCE_DIR=<src folder>")
endif()
get_filename_component(SOURCE_DIR "${SOURCE_DIR}" ABSOLUTE BASE_DIR "$ENV{PWD}")
file(GLOB_RECURSE _files RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*.cpp ${SOURCE_DIR}/*.hpp ${SOURCE_DIR}/*.h)
set(_violations "")
set(_checked 0)
foreach(_rel ${_files})
  string(REGEX MATCH "^[^/]+" _module "${_rel}")
  if(_rel STREQUAL _module)
    continue()  # a file directly in src/
  endif()
  if(NOT DEFINED TM_LAYER_${_module})
    string(APPEND _violations "  ${_rel}: module '${_module}' has no layer in cmake/CheckLayers.cmake\n")
    continue()
  endif()
  set(_own ${TM_LAYER_${_module}})
  file(STRINGS ${SOURCE_DIR}/${_rel} _includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[^\"]+\"")
  foreach(_line ${_includes})
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" _path "${_line}")
    string(REGEX MATCH "^[^/]+" _target "${_path}")
    if(_path STREQUAL _target OR _target STREQUAL _module OR _target STREQUAL "trainmeter"
       OR _target STREQUAL "generated")
      continue()  # same folder, own module, public header, generated file
    endif()
    math(EXPR _checked "${_checked} + 1")
    if(NOT DEFINED TM_LAYER_${_target})
      continue()  # not one of our modules (a third-party path)
    endif()
    if(NOT TM_LAYER_${_target} LESS _own)
      string(APPEND _violations
             "  ${_rel} (${_module}, layer ${_own}) includes \"${_path}\" (${_target}, layer ${TM_LAYER_${_target}})\n")
    endif()
  endforeach()
endforeach()
list(LENGTH _files _count)
if(_count EQUAL 0)
  message(FATAL_ERROR "layering: no sources under ${SOURCE_DIR}")
endif()
if(_violations)
  message(FATAL_ERROR "layering: includes that point the wrong way (lower layers must not include higher or equal ones; docs/architecture.md):\n${_violations}")
endif()
message(STATUS "layering: ${_count} files, ${_checked} cross-module includes, all pointing down")
