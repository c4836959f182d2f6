# Finds CivetWeb for the guestuser::civetweb adapter; used by the build and
# by the installed guestuserConfig.cmake.
#
# Defines the imported target guestuser_dep::civetweb when CivetWeb is found
# and sets GUESTUSER_CIVETWEB_FOUND, GUESTUSER_CIVETWEB_PC_REQUIRES and
# GUESTUSER_CIVETWEB_PC_LIBS (for guestuser-civetweb.pc).
#
# Not find_package(civetweb): Debian's civetweb-config.cmake imports a
# civetweb server executable that libcivetweb-dev does not ship, and fails
# with a FATAL_ERROR that cannot be caught. A civetweb.pc is used when one
# exists (upstream builds install it), else the header and library directly.
if(NOT TARGET guestuser_dep::civetweb)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(GUESTUSER_PC_CIVETWEB QUIET IMPORTED_TARGET civetweb)
  endif()
  if(GUESTUSER_PC_CIVETWEB_FOUND)
    add_library(guestuser_dep::civetweb INTERFACE IMPORTED)
    set_target_properties(guestuser_dep::civetweb PROPERTIES
      INTERFACE_LINK_LIBRARIES PkgConfig::GUESTUSER_PC_CIVETWEB)
  else()
    find_path(GUESTUSER_CIVETWEB_INCLUDE_DIR civetweb.h)
    find_library(GUESTUSER_CIVETWEB_LIBRARY civetweb)
    mark_as_advanced(GUESTUSER_CIVETWEB_INCLUDE_DIR GUESTUSER_CIVETWEB_LIBRARY)
    if(GUESTUSER_CIVETWEB_INCLUDE_DIR AND GUESTUSER_CIVETWEB_LIBRARY)
      add_library(guestuser_dep::civetweb UNKNOWN IMPORTED)
      set_target_properties(guestuser_dep::civetweb PROPERTIES
        IMPORTED_LOCATION "${GUESTUSER_CIVETWEB_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${GUESTUSER_CIVETWEB_INCLUDE_DIR}")
    endif()
  endif()
endif()

if(TARGET guestuser_dep::civetweb)
  set(GUESTUSER_CIVETWEB_FOUND TRUE)
  if(GUESTUSER_PC_CIVETWEB_FOUND)
    set(GUESTUSER_CIVETWEB_PC_REQUIRES " civetweb")
    set(GUESTUSER_CIVETWEB_PC_LIBS "")
  else()
    get_filename_component(_guestuser_cw_dir "${GUESTUSER_CIVETWEB_LIBRARY}" DIRECTORY)
    set(GUESTUSER_CIVETWEB_PC_REQUIRES "")
    # -L only for a directory the linker does not search anyway: a
    # packaged .pc must not name the build machine's library directory.
    if(_guestuser_cw_dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
      set(GUESTUSER_CIVETWEB_PC_LIBS " -lcivetweb")
    else()
      set(GUESTUSER_CIVETWEB_PC_LIBS " -L${_guestuser_cw_dir} -lcivetweb")
    endif()
    unset(_guestuser_cw_dir)
  endif()
else()
  set(GUESTUSER_CIVETWEB_FOUND FALSE)
endif()
