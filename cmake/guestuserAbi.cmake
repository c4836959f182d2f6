# The ABI of each shared library: its file version, its SONAME and the
# versions of its symbols, all from one list in abi/ (docs/abi.md).
#
#   guestuser_shared_abi(<target> <list>)
#
# sets VERSION (the project's) and SOVERSION (its major number) on <target>
# and links it with a version script made from <list>: the names under a
# "[X.Y]" line get the symbol version GUESTUSER_X.Y, each section inheriting
# the one before it, as glibc's and libcurl's do. A program linked against
# 1.1 then records that it needs GUESTUSER_1.1 and a 1.0 library refuses to
# load it with a clear message instead of failing at the first missing call.
# Nothing is made local here: hidden visibility already hides the rest, and a
# function exported but not listed keeps no version, which
# tests/check-symbols.sh reports.

include_guard(GLOBAL)

function(guestuser_version_script list out)
  file(STRINGS "${list}" lines)
  set(text "")
  set(node "")
  set(previous "")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    if(line MATCHES "^\\[([0-9]+\\.[0-9]+)\\]$")
      if(node)
        string(APPEND text "}${previous};\n")
        set(previous " ${node}")
      endif()
      set(node "GUESTUSER_${CMAKE_MATCH_1}")
      string(APPEND text "${node} {\n  global:\n")
    elseif(line MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
      if(NOT node)
        message(FATAL_ERROR "${line} comes before any [X.Y] section (${list})")
      endif()
      string(APPEND text "    ${line};\n")
    else()
      message(FATAL_ERROR "cannot read the line '${line}' (${list})")
    endif()
  endforeach()
  if(NOT node)
    message(FATAL_ERROR "no [X.Y] section (${list})")
  endif()
  string(APPEND text "}${previous};\n")
  file(CONFIGURE OUTPUT "${out}" CONTENT "${text}" @ONLY)
endfunction()

function(guestuser_shared_abi target list)
  set(map "${CMAKE_CURRENT_BINARY_DIR}/${target}.map")
  guestuser_version_script("${list}" "${map}")
  # Re-run the configure step when the list changes, and relink.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${list}")
  set_target_properties(${target} PROPERTIES VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR} LINK_DEPENDS "${map}")
  target_link_options(${target} PRIVATE "LINKER:--version-script=${map}")
endfunction()
