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

if(GUESTUSER_WITH_MHD)
  list(APPEND CPACK_COMPONENTS_ALL mhd mhd_dev)
  set(CPACK_DEBIAN_MHD_PACKAGE_NAME libguestuser-mhd${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_MHD_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_MHD_DESCRIPTION "libguestuser adapter for GNU libmicrohttpd")
  set(CPACK_COMPONENT_MHD_DEPENDS runtime)
  set(CPACK_DEBIAN_MHD_DEV_PACKAGE_NAME libguestuser-mhd-dev)
  set(CPACK_DEBIAN_MHD_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_MHD_DEV_DESCRIPTION
    "libguestuser adapter for GNU libmicrohttpd - development files")
  set(CPACK_COMPONENT_MHD_DEV_DEPENDS mhd dev)
  set(CPACK_DEBIAN_MHD_DEV_PACKAGE_DEPENDS "libmicrohttpd-dev")
endif()
if(GUESTUSER_OIDC)
  list(APPEND CPACK_COMPONENTS_ALL oidc oidc_dev)
  set(CPACK_DEBIAN_OIDC_PACKAGE_NAME libguestuser-oidc${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_OIDC_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_OIDC_DESCRIPTION "libguestuser sign-in through OpenID Connect providers")
  set(CPACK_COMPONENT_OIDC_DEPENDS runtime)
  set(CPACK_DEBIAN_OIDC_DEV_PACKAGE_NAME libguestuser-oidc-dev)
  set(CPACK_DEBIAN_OIDC_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_OIDC_DEV_DESCRIPTION
    "libguestuser sign-in through OpenID Connect providers - development files")
  set(CPACK_COMPONENT_OIDC_DEV_DEPENDS oidc dev)
  # guestuser-oidc.pc's Requires.private.
  set(CPACK_DEBIAN_OIDC_DEV_PACKAGE_DEPENDS
    "libcurl4-gnutls-dev | libcurl-dev, libcjose-dev, libjansson-dev, libssl-dev (>= 3.0)")
endif()
if(GUESTUSER_MAIL)
  list(APPEND CPACK_COMPONENTS_ALL mail mail_dev)
  set(CPACK_DEBIAN_MAIL_PACKAGE_NAME libguestuser-mail${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_MAIL_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_MAIL_DESCRIPTION "libguestuser delivery of mail over SMTP")
  set(CPACK_COMPONENT_MAIL_DEPENDS runtime)
  set(CPACK_DEBIAN_MAIL_DEV_PACKAGE_NAME libguestuser-mail-dev)
  set(CPACK_DEBIAN_MAIL_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_MAIL_DEV_DESCRIPTION
    "libguestuser delivery of mail over SMTP - development files")
  set(CPACK_COMPONENT_MAIL_DEV_DEPENDS mail dev)
  # guestuser-mail.pc's Requires.private.
  set(CPACK_DEBIAN_MAIL_DEV_PACKAGE_DEPENDS "libcurl4-gnutls-dev | libcurl-dev")
endif()
if(GUESTUSER_TESTING)
  list(APPEND CPACK_COMPONENTS_ALL testing testing_dev)
  set(CPACK_DEBIAN_TESTING_PACKAGE_NAME libguestuser-testing${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_TESTING_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_TESTING_DESCRIPTION
    "libguestuser in-process test client for an application's handlers")
  set(CPACK_COMPONENT_TESTING_DEPENDS runtime)
  set(CPACK_DEBIAN_TESTING_DEV_PACKAGE_NAME libguestuser-testing-dev)
  set(CPACK_DEBIAN_TESTING_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_TESTING_DEV_DESCRIPTION
    "libguestuser in-process test client for an application's handlers - development files")
  set(CPACK_COMPONENT_TESTING_DEV_DEPENDS testing dev)
endif()
if(GUESTUSER_WITH_CIVETWEB)
  list(APPEND CPACK_COMPONENTS_ALL civetweb civetweb_dev)
  set(CPACK_DEBIAN_CIVETWEB_PACKAGE_NAME libguestuser-civetweb${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_CIVETWEB_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_CIVETWEB_DESCRIPTION "libguestuser adapter for CivetWeb")
  set(CPACK_COMPONENT_CIVETWEB_DEPENDS runtime)
  set(CPACK_DEBIAN_CIVETWEB_DEV_PACKAGE_NAME libguestuser-civetweb-dev)
  set(CPACK_DEBIAN_CIVETWEB_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_CIVETWEB_DEV_DESCRIPTION
    "libguestuser adapter for CivetWeb - development files")
  set(CPACK_COMPONENT_CIVETWEB_DEV_DEPENDS civetweb dev)
  set(CPACK_DEBIAN_CIVETWEB_DEV_PACKAGE_DEPENDS "libcivetweb-dev")
endif()
if(GUESTUSER_WITH_ULFIUS)
  list(APPEND CPACK_COMPONENTS_ALL ulfius ulfius_dev)
  set(CPACK_DEBIAN_ULFIUS_PACKAGE_NAME libguestuser-ulfius${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_ULFIUS_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_ULFIUS_DESCRIPTION "libguestuser adapter for Ulfius")
  set(CPACK_COMPONENT_ULFIUS_DEPENDS runtime)
  set(CPACK_DEBIAN_ULFIUS_DEV_PACKAGE_NAME libguestuser-ulfius-dev)
  set(CPACK_DEBIAN_ULFIUS_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_ULFIUS_DEV_DESCRIPTION
    "libguestuser adapter for Ulfius - development files")
  set(CPACK_COMPONENT_ULFIUS_DEV_DEPENDS ulfius dev)
  set(CPACK_DEBIAN_ULFIUS_DEV_PACKAGE_DEPENDS "libulfius-dev, libmicrohttpd-dev")
endif()
if(GUESTUSER_WITH_EVHTTP)
  list(APPEND CPACK_COMPONENTS_ALL evhttp evhttp_dev)
  set(CPACK_DEBIAN_EVHTTP_PACKAGE_NAME libguestuser-evhttp${PROJECT_VERSION_MAJOR})
  set(CPACK_DEBIAN_EVHTTP_PACKAGE_SECTION libs)
  set(CPACK_COMPONENT_EVHTTP_DESCRIPTION "libguestuser adapter for libevent's evhttp")
  set(CPACK_COMPONENT_EVHTTP_DEPENDS runtime)
  set(CPACK_DEBIAN_EVHTTP_DEV_PACKAGE_NAME libguestuser-evhttp-dev)
  set(CPACK_DEBIAN_EVHTTP_DEV_PACKAGE_SECTION libdevel)
  set(CPACK_COMPONENT_EVHTTP_DEV_DESCRIPTION
    "libguestuser adapter for libevent's evhttp - development files")
  set(CPACK_COMPONENT_EVHTTP_DEV_DEPENDS evhttp dev)
  set(CPACK_DEBIAN_EVHTTP_DEV_PACKAGE_DEPENDS "libevent-dev")
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
  if(GUESTUSER_WITH_MHD)
    list(APPEND CPACK_COMPONENT_DEMO_DEPENDS mhd)
  endif()
  if(GUESTUSER_WITH_CIVETWEB)
    list(APPEND CPACK_COMPONENT_DEMO_DEPENDS civetweb)
  endif()
  if(GUESTUSER_WITH_ULFIUS)
    list(APPEND CPACK_COMPONENT_DEMO_DEPENDS ulfius)
  endif()
  if(GUESTUSER_WITH_EVHTTP)
    list(APPEND CPACK_COMPONENT_DEMO_DEPENDS evhttp)
  endif()
endif()
include(CPack)
