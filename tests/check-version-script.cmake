# cmake -DWORK=<dir> -P check-version-script.cmake: the version script that
# cmake/guestuserAbi.cmake makes from a list with two releases chains the
# second node to the first, as the linker expects, and refuses a list it
# cannot read.
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/guestuserAbi.cmake)
file(WRITE ${WORK}/two.txt "# comment\n[1.0]\nguest_a\n\nguest_b\n[1.2]\nguest_c\n")
guestuser_version_script(${WORK}/two.txt ${WORK}/two.map)
file(READ ${WORK}/two.map got)
set(want "GUESTUSER_1.0 {\n  global:\n    guest_a;\n    guest_b;\n};\nGUESTUSER_1.2 {\n  global:\n    guest_c;\n} GUESTUSER_1.0;\n")
if(NOT got STREQUAL want)
  message(FATAL_ERROR "version script:\n${got}\nexpected:\n${want}")
endif()
message(STATUS "two releases: chained as expected")
