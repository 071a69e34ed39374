# trainmeter_embed_file(<out_cpp> <symbol> <file>)
# Generates a C++ source defining `extern const char <symbol>[]` (and <symbol>_size) holding the
# bytes of <file>, re-generated when the file changes. Used for data tables and the report schema,
# so the library never depends on files at run time.
function(trainmeter_embed_file out_cpp symbol file)
  add_custom_command(
    OUTPUT ${out_cpp}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out_cpp} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake
    COMMENT "Embedding ${file}"
    VERBATIM)
endfunction()

# Warnings for our own targets.
function(trainmeter_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(TRAINMETER_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
