# Runs the package test (see package_tests.cmake): cmake -D<variables> -P run_package_test.cmake
#   QM_BUILD_DIR  the qmalloc build to install       QM_WORK_DIR     scratch directory (emptied first)
#   QM_SOURCE_DIR tests/package                       QM_CONFIG       build configuration (may be empty)
#   QM_GENERATOR, QM_MAKE_PROGRAM, QM_C_COMPILER      for the consumer build
#   QM_PKG_CONFIG pkg-config (empty or *-NOTFOUND: that half is skipped)
#   QM_VERSION    expected version                    QM_BINDIR, QM_LIBDIR, QM_INCLUDEDIR  install dirs
cmake_minimum_required(VERSION 3.16)

foreach(var QM_BUILD_DIR QM_WORK_DIR QM_SOURCE_DIR QM_GENERATOR QM_C_COMPILER QM_VERSION QM_BINDIR QM_LIBDIR
            QM_INCLUDEDIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_package_test.cmake: ${var} is not set")
  endif()
endforeach()

set(prefix "${QM_WORK_DIR}/prefix")
set(libdir "${prefix}/${QM_LIBDIR}")
set(run "${prefix}/${QM_BINDIR}/qmalloc-run")
set(consumer "${QM_WORK_DIR}/consumer-build")
set(config_args)
if(QM_CONFIG)
  set(config_args --config "${QM_CONFIG}")
endif()

# Runs a command; fails the test unless it exits 0. Leaves its output in run_out and run_err.
function(step what)
  message(STATUS "package test: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "package test: ${what} failed (${rc})\ncommand: ${cmd}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
  set(run_err "${err}" PARENT_SCOPE)
endfunction()

function(expect_match what regex text)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "package test: ${what}: expected to match '${regex}', got:\n${text}")
  endif()
endfunction()

function(expect_contains what needle text)
  string(FIND "${text}" "${needle}" at)
  if(at LESS 0)
    message(FATAL_ERROR "package test: ${what}: expected to contain '${needle}', got:\n${text}")
  endif()
endfunction()

# The value of key in the probe's "key=value" lines.
function(probe_value out key text)
  if(text MATCHES "(^|\n)${key}=([^\n]*)")
    set(${out} "${CMAKE_MATCH_2}" PARENT_SCOPE)
  else()
    message(FATAL_ERROR "package test: no ${key}= in the probe's output:\n${text}")
  endif()
endfunction()

# Fails unless the probe's malloc comes from the library at expected (symlinks resolved on both sides).
function(expect_malloc_from what expected text)
  probe_value(file malloc "${text}")
  get_filename_component(file_real "${file}" REALPATH)
  get_filename_component(expected_real "${expected}" REALPATH)
  if(NOT file_real STREQUAL expected_real)
    message(FATAL_ERROR "package test: ${what}: malloc comes from '${file}', expected '${expected}'\n${text}")
  endif()
endfunction()

file(REMOVE_RECURSE "${QM_WORK_DIR}")
file(MAKE_DIRECTORY "${QM_WORK_DIR}")

# 1. Install into the scratch prefix.
step("install into ${prefix}" "${CMAKE_COMMAND}" --install "${QM_BUILD_DIR}" --prefix "${prefix}" ${config_args})
foreach(f "${QM_INCLUDEDIR}/qmalloc.h" "${QM_LIBDIR}/libqmalloc.so" "${QM_LIBDIR}/libqmalloc.a"
          "${QM_LIBDIR}/cmake/qmalloc/qmallocConfig.cmake" "${QM_LIBDIR}/cmake/qmalloc/qmallocConfigVersion.cmake"
          "${QM_LIBDIR}/cmake/qmalloc/qmallocTargets.cmake" "${QM_LIBDIR}/pkgconfig/qmalloc.pc"
          "${QM_BINDIR}/qmalloc-run")
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "package test: the install lacks ${f}")
  endif()
endforeach()

# 2. A CMake project using find_package(qmalloc).
set(gen_args -G "${QM_GENERATOR}")
if(QM_MAKE_PROGRAM)
  list(APPEND gen_args "-DCMAKE_MAKE_PROGRAM=${QM_MAKE_PROGRAM}")
endif()
if(QM_CONFIG)
  list(APPEND gen_args "-DCMAKE_BUILD_TYPE=${QM_CONFIG}")
endif()
step("configure the consumer project" "${CMAKE_COMMAND}" -S "${QM_SOURCE_DIR}/consumer" -B "${consumer}"
     ${gen_args} "-DCMAKE_C_COMPILER=${QM_C_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
     -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "-DQM_EXPECT_PREFIX=${prefix}" "-DQM_EXPECT_VERSION=${QM_VERSION}")
step("build the consumer project" "${CMAKE_COMMAND}" --build "${consumer}" ${config_args})
file(READ "${consumer}/qmalloc-run-location.txt" imported_run)
get_filename_component(imported_run "${imported_run}" REALPATH)
get_filename_component(installed_run "${run}" REALPATH)
if(NOT imported_run STREQUAL installed_run)
  message(FATAL_ERROR "package test: qmalloc::qmalloc-run is ${imported_run}, expected ${installed_run}")
endif()

step("run the consumer linked with qmalloc::qmalloc" "${consumer}/out/app_shared")
expect_match("app_shared" "\nok\n" "${run_out}")
step("run the consumer linked with qmalloc::qmalloc-static" "${consumer}/out/app_static")
expect_match("app_static" "\nok\n" "${run_out}")

# 3. A one-file program built with pkg-config.
if(QM_PKG_CONFIG AND EXISTS "${QM_PKG_CONFIG}")
  set(pc_env "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${libdir}/pkgconfig")
  step("pkg-config --modversion qmalloc" ${pc_env} "${QM_PKG_CONFIG}" --modversion qmalloc)
  string(STRIP "${run_out}" pc_version)
  if(NOT pc_version STREQUAL QM_VERSION)
    message(FATAL_ERROR "package test: pkg-config reports version '${pc_version}', expected ${QM_VERSION}")
  endif()
  step("pkg-config --static --libs qmalloc" ${pc_env} "${QM_PKG_CONFIG}" --static --libs qmalloc)
  expect_match("pkg-config --static --libs" "-lqmalloc.*-lpthread" "${run_out}")
  step("pkg-config --cflags --libs qmalloc" ${pc_env} "${QM_PKG_CONFIG}" --cflags --libs qmalloc)
  separate_arguments(pc_flags UNIX_COMMAND "${run_out}")
  # The flags must point into the scratch prefix, whatever prefix the build was configured with.
  expect_contains("pkg-config --cflags --libs" "-I${prefix}/${QM_INCLUDEDIR}" "${run_out}")
  expect_contains("pkg-config --cflags --libs" "-L${libdir}" "${run_out}")
  step("compile pkgconfig_app.c with the pkg-config flags" "${QM_C_COMPILER}" "${QM_SOURCE_DIR}/pkgconfig_app.c"
       -o "${QM_WORK_DIR}/pkgconfig_app" ${pc_flags})
  step("run pkgconfig_app" "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${libdir}" "${QM_WORK_DIR}/pkgconfig_app")
  expect_match("pkgconfig_app" "ok\n" "${run_out}")
else()
  message(STATUS "package test: pkg-config not found, pkg-config checks skipped")
endif()

# 4. The installed qmalloc-run finds the installed library.
set(lib "${libdir}/libqmalloc.so")
set(probe "${consumer}/out/probe")
step("probe without qmalloc-run" "${probe}")
probe_value(plain_malloc malloc "${run_out}")
if(plain_malloc MATCHES "libqmalloc")
  message(FATAL_ERROR "package test: the probe uses qmalloc without being asked to:\n${run_out}")
endif()

step("qmalloc-run --version" "${run}" --version)
expect_contains("qmalloc-run --version" "qmalloc-run (qmalloc) ${QM_VERSION}" "${run_out}")
step("qmalloc-run --help" "${run}" --help)
expect_match("qmalloc-run --help" "Usage: qmalloc-run" "${run_out}")

step("installed qmalloc-run probe" "${run}" "${probe}")
expect_malloc_from("installed qmalloc-run" "${lib}" "${run_out}")
probe_value(verbose QMALLOC_VERBOSE "${run_out}")
if(NOT verbose STREQUAL "")
  message(FATAL_ERROR "package test: QMALLOC_VERBOSE is set without -v")
endif()

file(MAKE_DIRECTORY "${QM_WORK_DIR}/links")
file(CREATE_LINK "${run}" "${QM_WORK_DIR}/links/qmr" SYMBOLIC)
step("qmalloc-run through a symlink" "${QM_WORK_DIR}/links/qmr" "${probe}")
expect_malloc_from("qmalloc-run through a symlink" "${lib}" "${run_out}")

step("qmalloc-run -v keeps LD_PRELOAD" "${CMAKE_COMMAND}" -E env "LD_PRELOAD=${consumer}/out/libpreload_marker.so"
     "${run}" -v -- "${probe}")
expect_malloc_from("qmalloc-run -v" "${lib}" "${run_out}")
probe_value(preload LD_PRELOAD "${run_out}")
probe_value(verbose QMALLOC_VERBOSE "${run_out}")
if(NOT preload MATCHES "libqmalloc\\.so:.*/libpreload_marker\\.so$")
  message(FATAL_ERROR "package test: qmalloc-run should put qmalloc before the existing LD_PRELOAD, got '${preload}'")
endif()
if(NOT verbose STREQUAL "1")
  message(FATAL_ERROR "package test: qmalloc-run -v should set QMALLOC_VERBOSE=1, got '${verbose}'")
endif()
# With QMALLOC_VERBOSE=1 the library announces itself, with its version, on stderr.
string(REPLACE "." "\\." version_regex "${QM_VERSION}")
expect_match("qmalloc-run -v: the library's banner on stderr" "(^|\n)qmalloc[ :][^\n]*${version_regex}" "${run_err}")

step("QMALLOC_LIB overrides the library" "${CMAKE_COMMAND}" -E env "QMALLOC_LIB=${QM_BUILD_DIR}/libqmalloc.so"
     "${run}" "${probe}")
expect_malloc_from("QMALLOC_LIB" "${QM_BUILD_DIR}/libqmalloc.so" "${run_out}")

step("build-tree qmalloc-run probe" "${QM_BUILD_DIR}/qmalloc-run" "${probe}")
expect_malloc_from("build-tree qmalloc-run" "${QM_BUILD_DIR}/libqmalloc.so" "${run_out}")

# A real program under the installed launcher: cmake itself (C++, allocation-heavy).
step("installed qmalloc-run on cmake -E echo" "${run}" "${CMAKE_COMMAND}" -E echo "hello from qmalloc")
expect_match("qmalloc-run cmake -E echo" "hello from qmalloc" "${run_out}")

# Errors are reported, not ignored.
execute_process(COMMAND "${run}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "package test: qmalloc-run without a command should exit 2, exited ${rc}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -E env "QMALLOC_LIB=${QM_WORK_DIR}/missing.so" "${run}" "${probe}"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "QMALLOC_LIB")
  message(FATAL_ERROR "package test: qmalloc-run with a missing QMALLOC_LIB should fail (${rc}): ${err}")
endif()

message(STATUS "package test: all checks passed")
