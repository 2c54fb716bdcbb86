# profile.cmake - the profiling variant, libqmalloc-profile.so: the sampling heap profiler
# (src/profile.c, in every build, where it is empty unless QM_VARIANT_PROFILE) and the HTML memory
# report (src/report.c, with its page src/report.html compiled in). `qmalloc-run --report FILE`
# preloads it; docs/REPORT.md describes it.
set(QM_REPORT_TEMPLATE_H ${PROJECT_BINARY_DIR}/generated/report_template.h)
add_custom_command(
  OUTPUT ${QM_REPORT_TEMPLATE_H}
  COMMAND ${CMAKE_COMMAND} -DINPUT=${PROJECT_SOURCE_DIR}/src/report.html -DOUTPUT=${QM_REPORT_TEMPLATE_H}
          -DNAME=report_template_bytes -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${PROJECT_SOURCE_DIR}/src/report.html ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
  COMMENT "Embedding src/report.html")
qm_add_variant(profile DEFINES QM_VARIANT_PROFILE=1 SOURCES src/report.c ${QM_REPORT_TEMPLATE_H})
target_include_directories(qmalloc-profile PRIVATE ${PROJECT_BINARY_DIR}/generated)
