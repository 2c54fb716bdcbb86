# Variants of the shared library: the same sources built again with a QM_VARIANT_* definition and
# the variant's own extra sources, as libqmalloc-NAME.so. `qmalloc-run --variant NAME` (and the
# variant's own switch, such as --debug) preloads one; they are installed beside libqmalloc.so.
#
# qm_add_variant(NAME [DEFINES def...] [SOURCES file...] [LIBS lib...])
#   Adds the target qmalloc-NAME. DEFINES are added to the library's own definitions (QM_STATS,
#   QM_DEBUG, QM_OVERRIDE), SOURCES to QM_SOURCES.
function(qm_add_variant name)
  cmake_parse_arguments(A "" "" "DEFINES;SOURCES;LIBS" ${ARGN})
  set(target qmalloc-${name})
  add_library(${target} SHARED ${QM_SOURCES} ${A_SOURCES})
  set_target_properties(${target} PROPERTIES C_VISIBILITY_PRESET hidden VERSION ${PROJECT_VERSION}
                                             SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}> PRIVATE src)
  target_compile_options(${target} PRIVATE ${QM_WARNINGS} -ftls-model=initial-exec -fno-builtin-malloc
                                           -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc)
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -fno-semantic-interposition)
  endif()
  target_compile_definitions(${target} PRIVATE ${QM_DEFINES} ${A_DEFINES} $<$<CONFIG:Debug>:QM_DEBUG_BUILD=1>
                                               QM_OVERRIDE=$<BOOL:${QMALLOC_OVERRIDE}>)
  target_link_libraries(${target} PRIVATE Threads::Threads ${A_LIBS})
  target_link_options(${target} PRIVATE ${QM_SHARED_LINK_OPTIONS})
  install(TARGETS ${target} LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
endfunction()
