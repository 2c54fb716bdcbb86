# Package test: installs this build into a scratch prefix, builds a consumer project against it with
# find_package(qmalloc) and a one-file program with pkg-config, runs them, and checks that the installed
# qmalloc-run finds the installed library. Included at the end of tests/CMakeLists.txt.
#
# Only for builds whose library replaces malloc and that carry no sanitizer: the consumer checks that
# malloc is qmalloc's, and sanitizer runtimes cannot be preloaded into uninstrumented programs.

if(NOT QMALLOC_OVERRIDE OR QMALLOC_SANITIZE OR CMAKE_CROSSCOMPILING)
  return()
endif()
# An absolute install directory would ignore the scratch prefix.
foreach(qm_dir BINDIR LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${qm_dir}}")
    message(STATUS "qmalloc: no package test, CMAKE_INSTALL_${qm_dir} is absolute")
    return()
  endif()
endforeach()

find_program(QM_PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf DOC "pkg-config, for the package test")

add_test(NAME package_install
         COMMAND "${CMAKE_COMMAND}"
                 "-DQM_BUILD_DIR=${PROJECT_BINARY_DIR}"
                 "-DQM_CONFIG=$<CONFIG>"
                 "-DQM_WORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/package-work"
                 "-DQM_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}"
                 "-DQM_GENERATOR=${CMAKE_GENERATOR}"
                 "-DQM_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
                 "-DQM_C_COMPILER=${CMAKE_C_COMPILER}"
                 "-DQM_PKG_CONFIG=${QM_PKG_CONFIG_EXECUTABLE}"
                 "-DQM_VERSION=${PROJECT_VERSION}"
                 "-DQM_BINDIR=${CMAKE_INSTALL_BINDIR}"
                 "-DQM_LIBDIR=${CMAKE_INSTALL_LIBDIR}"
                 "-DQM_INCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}"
                 -P "${CMAKE_CURRENT_LIST_DIR}/run_package_test.cmake")
set_tests_properties(package_install PROPERTIES LABELS package TIMEOUT 600)
