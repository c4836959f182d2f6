# `cpack -G DEB` (in the build directory) makes one Debian package per
# install component of cmake/guestuserInstall.cmake:
#
#   libguestuserN              the shared library
#   libguestuser-dev           headers, static library, CMake and pkg-config files,
#                              the conformance kit (bin/guestuser-conformance)
#   libguestuser-mhdN / -dev   the libmicrohttpd adapter (when built)
#   libguestuser-civetwebN / -dev   the CivetWeb adapter (when built)
#   libguestuser-ulfiusN / -dev     the Ulfius adapter (when built)
#   libguestuser-evhttpN / -dev     the libevent evhttp adapter (when built)
#   libguestuser-oidcN / -dev  OpenID Connect sign-in (when built)
#   libguestuser-mailN / -dev  SMTP delivery of the mail outbox (when built)
#   libguestuser-testingN / -dev  the in-process test client (when built)
#   guestuser-tools            bin/guestuser
#   guestuser-demo             bin/guestuser-demo
#
# Install them with `apt-get install ./*.deb`. The runtime Depends of the
# libraries and programs come from dpkg-shlibdeps when it is installed;
# the -dev packages depend on the -dev packages their headers, static
# library and pkg-config files need.
set(CPACK_PACKAGE_NAME guestuser)
# Install under DESTDIR with the real prefix (/usr), so the pkg-config
# files written at install time name /usr, not cpack's staging directory.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Libraries go where the install rules were configured to put them. Debian
# keeps them in /usr/lib/<multiarch>, which GNUInstallDirs chooses when the
# prefix is /usr: configure with -DCMAKE_INSTALL_PREFIX=/usr to package.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "  cpack -G DEB: configure with -DCMAKE_INSTALL_PREFIX=/usr for "
    "packages whose libraries are in Debian's /usr/lib/<multiarch>")
endif()
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "temporary guest accounts for C web servers")
set(CPACK_PACKAGE_CONTACT "libguestuser developers <libguestuser@example.invalid>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://example.invalid/libguestuser")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
# Component DEPENDS below become "Depends: <package> (= version)".
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
find_program(GUESTUSER_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(GUESTUSER_DPKG_SHLIBDEPS)
if(GUESTUSER_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # Our own libraries come from the packages named by the component
  # DEPENDS; dpkg-shlibdeps finds them in the build tree.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "")
  foreach(t guestuser guestuser_mhd guestuser_civetweb guestuser_ulfius guestuser_evhttp guestuser_oidc
    guestuser_mail guestuser_testing)
    if(TARGET ${t})
      get_target_property(_dir ${t} BINARY_DIR)
      list(APPEND CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${_dir})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS)
  unset(_dir)
endif()

set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libguestuser${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "temporary guest accounts for C web servers - runtime library")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libguestuser-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "temporary guest accounts for C web servers - development files")
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
# guestuser.pc's Requires.private and the static library's dependencies.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "pkg-config, libpq-dev, uuid-dev, libssl-dev (>= 3.0), libjansson-dev, libpwquality-dev")

# A component library and its -dev files: two packages, libguestuser-NAME
# with the SONAME's number and libguestuser-NAME-dev, described by WHAT;
# DEV_DEPENDS are the Debian -dev packages its .pc file and CMake component
# need (empty for none). A macro: the CPACK_ variables belong to this scope.
macro(guestuser_component_packages name what)
  string(TOUPPER ${name} _up)
  list(APPEND CPACK_COMPONENTS_ALL ${name} ${name}_dev)
  set(CPACK_DEBIAN_${_up}_PACKAGE_NAME libguestuser-${name}${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_${_up}_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_${_up}_DESCRIPTION "${what}")
  set(CPACK_COMPONENT_${_up}_DEPENDS runtime)
  set(CPACK_DEBIAN_${_up}_DEV_PACKAGE_NAME libguestuser-${name}-dev)
  set(CPACK_DEBIAN_${_up}_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_${_up}_DEV_DESCRIPTION "${what} - development files")
  set(CPACK_COMPONENT_${_up}_DEV_DEPENDS ${name} dev)
  if(NOT "${ARGN}" STREQUAL "")
    set(CPACK_DEBIAN_${_up}_DEV_PACKAGE_DEPENDS "${ARGN}")
  endif()
endmacro()

if(GUESTUSER_WITH_MHD)
  guestuser_component_packages(mhd "libguestuser adapter for GNU libmicrohttpd"
    "libmicrohttpd-dev")
endif()
if(GUESTUSER_OIDC)
  # guestuser-oidc.pc's Requires.private.
  guestuser_component_packages(oidc "libguestuser sign-in through OpenID Connect providers"
    "libcurl4-gnutls-dev | libcurl-dev, libcjose-dev, libjansson-dev, libssl-dev (>= 3.0)")
endif()
if(GUESTUSER_MAIL)
  # guestuser-mail.pc's Requires.private.
  guestuser_component_packages(mail "libguestuser delivery of mail over SMTP"
    "libcurl4-gnutls-dev | libcurl-dev")
endif()
if(GUESTUSER_TESTING)
  guestuser_component_packages(testing
    "libguestuser in-process test client for an application's handlers")
endif()
if(GUESTUSER_WITH_CIVETWEB)
  guestuser_component_packages(civetweb "libguestuser adapter for CivetWeb" "libcivetweb-dev")
endif()
if(GUESTUSER_WITH_ULFIUS)
  guestuser_component_packages(ulfius "libguestuser adapter for Ulfius"
    "libulfius-dev, libmicrohttpd-dev")
endif()
if(GUESTUSER_WITH_EVHTTP)
  guestuser_component_packages(evhttp "libguestuser adapter for libevent's evhttp" "libevent-dev")
endif()
if(GUESTUSER_TOOLS)
  list(APPEND CPACK_COMPONENTS_ALL tools)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME guestuser-tools)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION admin)
  set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "libguestuser admin tool: migrations, cleanup of expired guests, counts")
  set(CPACK_COMPONENT_TOOLS_DEPENDS runtime)
endif()
if(TARGET guestuser-demo)
  list(APPEND CPACK_COMPONENTS_ALL demo)
  set(CPACK_DEBIAN_DEMO_PACKAGE_NAME guestuser-demo)
  set(CPACK_DEBIAN_DEMO_PACKAGE_SECTION web)
  set(CPACK_COMPONENT_DEMO_DESCRIPTION "libguestuser demo web server")
  set(CPACK_COMPONENT_DEMO_DEPENDS runtime)
  foreach(_a MHD CIVETWEB ULFIUS EVHTTP)
    if(GUESTUSER_WITH_${_a})
      string(TOLOWER ${_a} _name)
      list(APPEND CPACK_COMPONENT_DEMO_DEPENDS ${_name})
    endif()
  endforeach()
endif()
include(CPack)
