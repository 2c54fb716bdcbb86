# The benchmark runner in the build: the targets `bench` (full suite), `bench-quick` and
# `bench-fastpath`, the ctest entry bench.smoke, and the install rules of the runner
# (bin/qmalloc-bench) and of the workload programs (libexec/qmalloc/bench/).
#
# Included at the end of bench/CMakeLists.txt, which defines a target qmb-<name> per workload, lists
# the names in QMB_WORKLOADS, and may define qmb-fastpath. The real programs (python, python-malloc,
# cc) need no build: their scripts in programs/ are copied beside the workload programs. The runner is configured twice over from
# qmalloc-bench.py: into the build tree next to the workload programs (where it finds them, and
# libqmalloc.so one directory up), and, with the same text, for the install, where it finds both
# through the relative paths from the bin directory computed here.

set(QMB_INSTALL_DIR "${CMAKE_INSTALL_LIBEXECDIR}/qmalloc/bench")
set(QMB_BUILD_DIR "${PROJECT_BINARY_DIR}/bench")
file(RELATIVE_PATH QMB_REL_BENCH_DIR "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBEXECDIR}/qmalloc/bench")
file(RELATIVE_PATH QMB_REL_LIB_DIR "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
if(QMB_REL_LIB_DIR STREQUAL "")
  set(QMB_REL_LIB_DIR ".")
endif()
set(QMB_SOURCE_DIR "${PROJECT_SOURCE_DIR}") # the cc workload compiles the library's sources from here
set(QMB_REAL_PROGRAMS python python-malloc cc)

# configure_file cannot set permissions before CMake 3.19: configure into a staging directory, then copy.
set(QMB_STAGE "${PROJECT_BINARY_DIR}/CMakeFiles/qmalloc-bench-stage")
configure_file("${CMAKE_CURRENT_LIST_DIR}/qmalloc-bench.py" "${QMB_STAGE}/qmalloc-bench" @ONLY)
file(COPY "${QMB_STAGE}/qmalloc-bench" "${CMAKE_CURRENT_LIST_DIR}/install-peers.sh" DESTINATION "${QMB_BUILD_DIR}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(QMB_RUNNER "${QMB_BUILD_DIR}/qmalloc-bench")
# The real programs' scripts are run through their interpreters (python3, sh): no permissions needed.
set(QMB_PROGRAM_SCRIPTS "${CMAKE_CURRENT_LIST_DIR}/programs/python-objects.py"
                        "${CMAKE_CURRENT_LIST_DIR}/programs/cc-build.sh")
foreach(qmb_script IN LISTS QMB_PROGRAM_SCRIPTS)
  get_filename_component(qmb_script_name "${qmb_script}" NAME)
  configure_file("${qmb_script}" "${QMB_BUILD_DIR}/programs/${qmb_script_name}" COPYONLY)
endforeach()

set(QMB_PROGRAMS)
foreach(qmb_name IN LISTS QMB_WORKLOADS)
  list(APPEND QMB_PROGRAMS qmb-${qmb_name})
endforeach()
if(TARGET qmb-fastpath)
  list(APPEND QMB_PROGRAMS qmb-fastpath)
endif()

if(QMB_PROGRAMS)
  install(TARGETS ${QMB_PROGRAMS} RUNTIME DESTINATION "${QMB_INSTALL_DIR}")
endif()
install(PROGRAMS "${QMB_RUNNER}" DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(PROGRAMS "${CMAKE_CURRENT_LIST_DIR}/install-peers.sh" DESTINATION "${QMB_INSTALL_DIR}")
install(FILES ${QMB_PROGRAM_SCRIPTS} DESTINATION "${QMB_INSTALL_DIR}/programs")

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "qmalloc: python3 not found, no bench targets and no bench.smoke test")
  return()
endif()

# The runner measures this build's library and programs. Results go to <build>/bench-results/<time>;
# QMALLOC_BENCH_ARGS in the environment adds runner options (e.g. "--reps=3 --allocators=qmalloc,glibc").
string(REPLACE ";" "," QMB_WORKLOAD_LIST "${QMB_WORKLOADS};${QMB_REAL_PROGRAMS}")
set(QMB_RUN "${Python3_EXECUTABLE}" "${QMB_RUNNER}" "--bench-dir=${QMB_BUILD_DIR}"
            "--qmalloc-lib=$<TARGET_FILE:qmalloc>" "--source-dir=${PROJECT_SOURCE_DIR}")
if(QMB_WORKLOAD_LIST)
  list(APPEND QMB_RUN "--workloads=${QMB_WORKLOAD_LIST}")
endif()

add_custom_target(bench COMMAND ${QMB_RUN} WORKING_DIRECTORY "${PROJECT_BINARY_DIR}" USES_TERMINAL VERBATIM
                  COMMENT "Benchmark suite (full size): qmalloc against the allocators found")
add_custom_target(bench-quick COMMAND ${QMB_RUN} --quick WORKING_DIRECTORY "${PROJECT_BINARY_DIR}" USES_TERMINAL
                  VERBATIM COMMENT "Benchmark suite (quick size)")
add_custom_target(bench-fastpath COMMAND ${QMB_RUN} --fastpath WORKING_DIRECTORY "${PROJECT_BINARY_DIR}"
                  USES_TERMINAL VERBATIM COMMENT "Instructions per malloc and free under callgrind")
foreach(qmb_target bench bench-quick bench-fastpath)
  add_dependencies(${qmb_target} qmalloc ${QMB_PROGRAMS})
endforeach()

# The smoke test runs every workload once at the tiny size under every allocator found (qmalloc and
# glibc at least; missing peers are named in its output). Preloading means nothing when qmalloc does
# not replace malloc, and sanitizer runtimes cannot be preloaded into other programs: no test there.
if(QMALLOC_BUILD_TESTS AND QMALLOC_OVERRIDE AND NOT QMALLOC_SANITIZE)
  add_test(NAME bench.smoke COMMAND ${QMB_RUN} --smoke "--out=${QMB_BUILD_DIR}/smoke-results")
  set_tests_properties(bench.smoke PROPERTIES LABELS bench TIMEOUT 300 ENVIRONMENT "QMALLOC_BENCH_ARGS=;QUICK=")
endif()
# How the runner starts and reaps what it measures: 500 short programs, each reaped with its own status.
if(QMALLOC_BUILD_TESTS)
  add_test(NAME bench.runner COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_LIST_DIR}/test-runner.py"
                                     "${QMB_RUNNER}" 500)
  set_tests_properties(bench.runner PROPERTIES LABELS bench TIMEOUT 120)
  # The seeds the plan gives each repetition: the same under every allocator (test-plan.py).
  add_test(NAME bench.plan COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_LIST_DIR}/test-plan.py" "${QMB_RUNNER}")
  set_tests_properties(bench.plan PROPERTIES LABELS bench TIMEOUT 60)
endif()
