# cmake -DLIST=<list> -DOUT=<map> -P version-script.cmake: runs
# cmake/guestuserAbi.cmake's generator on one list (for tests).
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/guestuserAbi.cmake)
guestuser_version_script(${LIST} ${OUT})
