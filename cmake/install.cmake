# Install rules: the header, the shared and static libraries, the CMake package (qmalloc::qmalloc,
# qmalloc::qmalloc-static) and a pkg-config file. qmalloc-run is installed by cmake/tools.cmake.

include(CMakePackageConfigHelpers)

set(QM_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/qmalloc")
set(QM_PACKAGE_STAGE "${PROJECT_BINARY_DIR}/CMakeFiles/qmalloc-package")

install(FILES "${PROJECT_SOURCE_DIR}/include/qmalloc.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(TARGETS qmalloc qmalloc-static EXPORT qmallocTargets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")

install(EXPORT qmallocTargets NAMESPACE qmalloc:: FILE qmallocTargets.cmake
        DESTINATION "${QM_CMAKE_INSTALL_DIR}")

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/qmallocConfig.cmake.in"
                              "${QM_PACKAGE_STAGE}/qmallocConfig.cmake"
                              INSTALL_DESTINATION "${QM_CMAKE_INSTALL_DIR}"
                              PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x releases may break compatibility from one minor version to the next.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(QM_VERSION_COMPATIBILITY SameMinorVersion)
else()
  set(QM_VERSION_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file("${QM_PACKAGE_STAGE}/qmallocConfigVersion.cmake"
                                 VERSION "${PROJECT_VERSION}" COMPATIBILITY ${QM_VERSION_COMPATIBILITY})
install(FILES "${QM_PACKAGE_STAGE}/qmallocConfig.cmake" "${QM_PACKAGE_STAGE}/qmallocConfigVersion.cmake"
        DESTINATION "${QM_CMAKE_INSTALL_DIR}")

# pkg-config. The prefix written into qmalloc.pc is the one used at install time, so that
# `cmake --install <build> --prefix <dir>` (and DESTDIR staging) gives a correct file: the
# template is filled in now except for the prefix, which an install-time step fills in.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(QM_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(QM_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(QM_PC_PREFIX "@QM_PC_INSTALL_PREFIX@") # left for the install-time step
configure_file("${PROJECT_SOURCE_DIR}/cmake/qmalloc.pc.in" "${QM_PACKAGE_STAGE}/qmalloc.pc.in" @ONLY)
install(CODE "set(QM_PC_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${QM_PACKAGE_STAGE}/qmalloc.pc.in\" \"${QM_PACKAGE_STAGE}/qmalloc.pc\" @ONLY)")
install(FILES "${QM_PACKAGE_STAGE}/qmalloc.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
