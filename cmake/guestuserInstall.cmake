# What `cmake --install` puts where, split into install components that
# cmake/guestuserPackaging.cmake turns into Debian packages:
#
#   runtime       libguestuser.so.1
#   dev           headers, libguestuser.so, libguestuser.a, guestuser.pc,
#                 guestuserConfig*.cmake, guestuser(Static)Targets*.cmake;
#                 the conformance kit (GUESTUSER_CONFORMANCE): conformance.h,
#                 libguestuser-conformance.a, guestuser-conformance.pc,
#                 guestuserConformanceTargets*.cmake, bin/guestuser-conformance
#   mhd           libguestuser-mhd.so.1           (GUESTUSER_WITH_MHD)
#   mhd_dev       adapters/mhd.h, libguestuser-mhd.so, guestuser-mhd.pc,
#                 guestuserMhdTargets*.cmake
#   civetweb      libguestuser-civetweb.so.1      (GUESTUSER_WITH_CIVETWEB)
#   civetweb_dev  the same for CivetWeb, plus guestuserCivetWeb.cmake
#   ulfius        libguestuser-ulfius.so.1        (GUESTUSER_WITH_ULFIUS)
#   ulfius_dev    the same for Ulfius
#   evhttp        libguestuser-evhttp.so.1        (GUESTUSER_WITH_EVHTTP)
#   evhttp_dev    the same for libevent's evhttp
#   oidc          libguestuser-oidc.so.1          (GUESTUSER_OIDC)
#   oidc_dev      oidc.h, libguestuser-oidc.so, guestuser-oidc.pc,
#                 guestuserOidcTargets*.cmake
#   testing       libguestuser-testing.so.1       (GUESTUSER_TESTING)
#   testing_dev   testing.h, libguestuser-testing.so, guestuser-testing.pc,
#                 guestuserTestingTargets*.cmake
#   mail          libguestuser-mail.so.1          (GUESTUSER_MAIL)
#   mail_dev      smtp.h, libguestuser-mail.so, guestuser-mail.pc,
#                 guestuserMailTargets*.cmake
#   tools         bin/guestuser (tools/), demo: bin/guestuser-demo (examples/)
#
# One export file per CMake package component, so that a user of one
# adapter never loads the other's targets or looks for its server.
include(CMakePackageConfigHelpers)
set(GUESTUSER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/guestuser)

# The installed targets name their dependencies guestuser_dep::<pkg-config
# module>, targets that the installed guestuserConfig.cmake creates itself,
# instead of the build's PkgConfig::<prefix> names, which a user's project
# may define differently.
set(_guestuser_dep_names PQ=libpq UUID=uuid SSL=libcrypto JANSSON=jansson
  PWQUALITY=pwquality MHD=libmicrohttpd ULFIUS=libulfius EVENT=libevent_evhttp)
function(guestuser__rename_deps_for_install target)
  get_target_property(libs ${target} INTERFACE_LINK_LIBRARIES)
  if(NOT libs)
    return()
  endif()
  set(out "")
  foreach(item IN LISTS libs)
    if(item MATCHES "PkgConfig::([A-Za-z0-9_]+)")
      set(prefix ${CMAKE_MATCH_1})
      set(module "")
      foreach(pair IN LISTS _guestuser_dep_names)
        if(pair MATCHES "^${prefix}=(.+)$")
          set(module ${CMAKE_MATCH_1})
        endif()
      endforeach()
      if(NOT module)
        message(FATAL_ERROR "${target} links PkgConfig::${prefix}: add it to "
          "_guestuser_dep_names in cmake/guestuserInstall.cmake and to "
          "cmake/guestuserConfig.cmake.in")
      endif()
      string(REPLACE "PkgConfig::${prefix}" "guestuser_dep::${module}" installed "${item}")
      list(APPEND out "$<BUILD_INTERFACE:${item}>" "$<INSTALL_INTERFACE:${installed}>")
    else()
      list(APPEND out "${item}")
    endif()
  endforeach()
  set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${out}")
endfunction()

# The core: the shared library needs nothing at CMake time (its
# dependencies are private); the static one is its own export, loaded only
# for the `static` component, which then looks for its dependencies.
install(TARGETS guestuser EXPORT guestuserTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
    NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT guestuserTargets NAMESPACE guestuser:: DESTINATION ${GUESTUSER_CMAKE_DIR}
  COMPONENT dev)
guestuser__rename_deps_for_install(guestuser_static)
install(TARGETS guestuser_static EXPORT guestuserStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT guestuserStaticTargets NAMESPACE guestuser::
  DESTINATION ${GUESTUSER_CMAKE_DIR} COMPONENT dev)
install(DIRECTORY include/guestuser DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev PATTERN "adapters" EXCLUDE PATTERN "*.in" EXCLUDE
  PATTERN "conformance.h" EXCLUDE PATTERN "oidc.h" EXCLUDE PATTERN "smtp.h" EXCLUDE
  PATTERN "testing.h" EXCLUDE)

# The conformance kit's route table: a static library with its own export
# (the `conformance` component of find_package), installed with the -dev
# files; tools/conformance/ installs the program.
if(GUESTUSER_CONFORMANCE)
  install(TARGETS guestuser_conformance EXPORT guestuserConformanceTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT guestuserConformanceTargets NAMESPACE guestuser::
    DESTINATION ${GUESTUSER_CMAKE_DIR} COMPONENT dev)
  install(FILES include/guestuser/conformance.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/guestuser COMPONENT dev)
endif()

# A component's shared library (package NAME), its export set EXPORT and
# its header (package NAME_dev, under include/guestuser/HEADER_DIR).
function(guestuser_install_component name export header header_dir)
  install(TARGETS guestuser_${name} EXPORT ${export}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ${name}
      NAMELINK_COMPONENT ${name}_dev
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT ${export} NAMESPACE guestuser:: DESTINATION ${GUESTUSER_CMAKE_DIR}
    COMPONENT ${name}_dev)
  install(FILES ${header}
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/guestuser${header_dir} COMPONENT ${name}_dev)
endfunction()

foreach(_adapter mhd civetweb ulfius evhttp)
  string(TOUPPER ${_adapter} _upper)
  if(NOT GUESTUSER_WITH_${_upper})
    continue()
  endif()
  # guestuserMhdTargets, guestuserCivetwebTargets, ...
  string(SUBSTRING ${_upper} 0 1 _first)
  string(SUBSTRING ${_adapter} 1 -1 _rest)
  guestuser__rename_deps_for_install(guestuser_${_adapter})
  guestuser_install_component(${_adapter} guestuser${_first}${_rest}Targets
    include/guestuser/adapters/${_adapter}.h /adapters)
endforeach()
# libguestuser-oidc: its dependencies (libcurl, cjose, jansson, libcrypto)
# are private to the shared library, so its export names none of them.
if(GUESTUSER_OIDC)
  guestuser_install_component(oidc guestuserOidcTargets include/guestuser/oidc.h "")
endif()
# libguestuser-testing: needs nothing but the library.
if(GUESTUSER_TESTING)
  guestuser_install_component(testing guestuserTestingTargets include/guestuser/testing.h "")
endif()
# libguestuser-mail: libcurl is private to the shared library, so its
# export names nothing else.
if(GUESTUSER_MAIL)
  guestuser_install_component(mail guestuserMailTargets include/guestuser/smtp.h "")
endif()
if(GUESTUSER_WITH_CIVETWEB)
  install(FILES cmake/guestuserCivetWeb.cmake DESTINATION ${GUESTUSER_CMAKE_DIR}
    COMPONENT civetweb_dev)
endif()

configure_package_config_file(cmake/guestuserConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/guestuserConfig.cmake INSTALL_DESTINATION ${GUESTUSER_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/guestuserConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/guestuserConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/guestuserConfigVersion.cmake DESTINATION ${GUESTUSER_CMAKE_DIR}
  COMPONENT dev)

# pkg-config files name their prefix absolutely, as Debian's own do
# (relative ${pcfiledir} paths printed -I/usr/lib/pkgconfig/../../include).
# The prefix is only known at install time -- `cmake --install --prefix DIR`
# or cpack's /usr -- so each file is written then, from a template whose
# other fields were filled at configure time.
function(guestuser_install_pc name component)
  set(GUESTUSER_PC_PREFIX "@GUESTUSER_PC_PREFIX@")
  set(_template ${CMAKE_CURRENT_BINARY_DIR}/pc/${name}.pc.in)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/pc/${name}.pc)
  configure_file(cmake/${name}.pc.in ${_template} @ONLY)
  install(CODE "set(GUESTUSER_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
configure_file(\"${_template}\" \"${_out}\" @ONLY)" COMPONENT ${component})
  install(FILES ${_out} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT ${component})
endfunction()
guestuser_install_pc(guestuser dev)
# guestuser-db: the library plus libpq (guestuser/db.h's PGresults).
guestuser_install_pc(guestuser-db dev)
if(GUESTUSER_CONFORMANCE)
  guestuser_install_pc(guestuser-conformance dev)
endif()
if(GUESTUSER_OIDC)
  guestuser_install_pc(guestuser-oidc oidc_dev)
endif()
if(GUESTUSER_TESTING)
  guestuser_install_pc(guestuser-testing testing_dev)
endif()
if(GUESTUSER_MAIL)
  guestuser_install_pc(guestuser-mail mail_dev)
endif()
foreach(_adapter mhd civetweb ulfius evhttp)
  string(TOUPPER ${_adapter} _upper)
  if(GUESTUSER_WITH_${_upper})
    guestuser_install_pc(guestuser-${_adapter} ${_adapter}_dev)
  endif()
endforeach()
