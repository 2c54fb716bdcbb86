# The toolbox benchmark: pool, arena, stack and heap-destroy against plain qm_malloc/qm_free running
# the same pattern (bench/toolbox.c). Defines the executable target qmb-toolbox, linked with
# libqmalloc.a, and (with tests enabled) a smoke test that runs it at --size=tiny.
add_executable(qmb-toolbox ${CMAKE_CURRENT_LIST_DIR}/toolbox.c)
target_link_libraries(qmb-toolbox PRIVATE qmalloc-static)
target_compile_options(qmb-toolbox PRIVATE ${QM_WARNINGS})
if(QMALLOC_BUILD_TESTS)
  add_test(NAME bench.toolbox COMMAND qmb-toolbox --size=tiny)
  set_tests_properties(bench.toolbox PROPERTIES LABELS "bench;toolbox" TIMEOUT 60)
endif()
