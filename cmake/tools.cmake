# qmalloc-run: runs a program with libqmalloc.so preloaded.
#
# The script is configured into the build directory (next to libqmalloc.so, where it finds the library
# in the build tree) and installed to the bin directory, where it finds the library through the relative
# path from the bin directory to the lib directory, computed here. QMALLOC_RUN_SCRIPT names the build
# tree copy for the tests.

file(RELATIVE_PATH QM_RUN_REL_LIBDIR "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
if(QM_RUN_REL_LIBDIR STREQUAL "")
  set(QM_RUN_REL_LIBDIR ".")
endif()
set(QM_RUN_LIBNAME "${CMAKE_SHARED_LIBRARY_PREFIX}qmalloc${CMAKE_SHARED_LIBRARY_SUFFIX}")
set(QM_RUN_SONAME "${QM_RUN_LIBNAME}.${PROJECT_VERSION_MAJOR}")
if(QMALLOC_OVERRIDE)
  set(QM_RUN_OVERRIDE 1)
else()
  set(QM_RUN_OVERRIDE 0)
endif()

# configure_file cannot set permissions before CMake 3.19: configure into a staging directory, then copy.
set(QM_RUN_STAGE "${PROJECT_BINARY_DIR}/CMakeFiles/qmalloc-run-stage")
configure_file("${PROJECT_SOURCE_DIR}/tools/qmalloc-run.in" "${QM_RUN_STAGE}/qmalloc-run" @ONLY)
file(COPY "${QM_RUN_STAGE}/qmalloc-run" DESTINATION "${PROJECT_BINARY_DIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(QMALLOC_RUN_SCRIPT "${PROJECT_BINARY_DIR}/qmalloc-run")

install(PROGRAMS "${QMALLOC_RUN_SCRIPT}" DESTINATION "${CMAKE_INSTALL_BINDIR}")

# qmalloc-replay: replays a trace of libqmalloc-trace.so against the malloc of its own process. It
# is linked normally, not with qmalloc, so that a preloaded allocator (or glibc's) is the one measured.
add_executable(qmalloc-replay "${PROJECT_SOURCE_DIR}/tools/qmalloc-replay.c")
target_include_directories(qmalloc-replay PRIVATE "${PROJECT_SOURCE_DIR}/src")
# -fno-builtin: the compiler must not fold the calls it replays.
target_compile_options(qmalloc-replay PRIVATE ${QM_WARNINGS} -fno-builtin)
target_link_libraries(qmalloc-replay PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
install(TARGETS qmalloc-replay RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
