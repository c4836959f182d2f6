# OpenID Providers on loopback for the identity-provider tests
# (tests/oidc/README.md): the real one (oidc-provider) and a hostile one of
# the tests' own making, both under node, started and stopped by ctest as
# the fixture `oidc`; their addresses and secrets in ${GUESTUSER_OIDC_ENV_FILE}.
# The fixture fails with the reason when node or tests/oidc/node_modules is
# missing (scripts/deps.sh installs node; scripts/test.sh runs npm ci).
#
# guestuser_oidc_test(TEST) marks a test as needing the fixture: it runs
# after oidc_start, is told where the env file is (OIDC_ENV_FILE), and, if
# TEST is also an executable, links the C helpers (oidc_env.h,
# oidc_browser.h; libcurl).
find_program(GUESTUSER_NODE node)
set(GUESTUSER_OIDC_DIR ${CMAKE_CURRENT_BINARY_DIR}/oidc)
set(GUESTUSER_OIDC_ENV_FILE ${GUESTUSER_OIDC_DIR}/env)
set(_oidc_script ${CMAKE_CURRENT_SOURCE_DIR}/oidc/oidc-fixture.sh)
set(_oidc_node_env "")
if(GUESTUSER_NODE)
  set(_oidc_node_env GUESTUSER_NODE=${GUESTUSER_NODE})
endif()
add_test(NAME oidc_start COMMAND ${CMAKE_COMMAND} -E env ${_oidc_node_env}
  bash ${_oidc_script} start ${GUESTUSER_OIDC_DIR})
add_test(NAME oidc_stop COMMAND bash ${_oidc_script} stop ${GUESTUSER_OIDC_DIR})
set_tests_properties(oidc_start PROPERTIES FIXTURES_SETUP oidc TIMEOUT 90)
set_tests_properties(oidc_stop PROPERTIES FIXTURES_CLEANUP oidc TIMEOUT 60)

# The C helpers, for any test of the flow.
pkg_check_modules(GUESTUSER_OIDC_CURL IMPORTED_TARGET libcurl)
if(GUESTUSER_OIDC_CURL_FOUND)
  add_library(guestuser_oidc_testlib STATIC oidc/oidc_env.c oidc/oidc_browser.c)
  target_include_directories(guestuser_oidc_testlib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/oidc)
  target_compile_definitions(guestuser_oidc_testlib PRIVATE
    GUESTUSER_OIDC_ENV_FILE="${GUESTUSER_OIDC_ENV_FILE}")
  target_link_libraries(guestuser_oidc_testlib PUBLIC PkgConfig::GUESTUSER_OIDC_CURL
    Threads::Threads PRIVATE guestuser_flags)
else()
  message(STATUS "libcurl not found: the OIDC test helpers are off (Debian: libcurl4-gnutls-dev)")
endif()

function(guestuser_oidc_test name)
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED oidc)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
    "OIDC_ENV_FILE=${GUESTUSER_OIDC_ENV_FILE}")
  if(TARGET ${name} AND TARGET guestuser_oidc_testlib)
    target_link_libraries(${name} PRIVATE guestuser_oidc_testlib)
  endif()
endfunction()

# The fixture itself: from C (discovery, alice's flow with
# oidc_browser_login, the hostile `good` mode's RS256 token), and every
# client, user and hostile mode checked by an independent relying party
# (tests/oidc/selftest.mjs, jose).
if(TARGET guestuser_oidc_testlib)
  guestuser_add_check_test(test_oidc_fixture SOURCES oidc/test_oidc_fixture.c
    LIBS PkgConfig::JANSSON)
  guestuser_oidc_test(test_oidc_fixture)
  set_tests_properties(test_oidc_fixture PROPERTIES TIMEOUT 120)
endif()
if(GUESTUSER_NODE)
  add_test(NAME oidc_selftest COMMAND ${GUESTUSER_NODE}
    ${CMAKE_CURRENT_SOURCE_DIR}/oidc/selftest.mjs ${GUESTUSER_OIDC_ENV_FILE})
  guestuser_oidc_test(oidc_selftest)
  set_tests_properties(oidc_selftest PROPERTIES TIMEOUT 180)
endif()
