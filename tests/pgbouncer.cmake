# PgBouncer in transaction pooling mode in front of the test cluster
# (tests/pgbouncer-fixture.sh), and the suites that must pass through it:
# the request path, conversion, login, cleanup, the application's own SQL,
# the demo and the tool. Each runs the same executable as its direct twin,
# told by its environment to connect through PgBouncer; the two share a
# schema, so they never run at once (RESOURCE_LOCK).
find_program(GUESTUSER_PGBOUNCER pgbouncer PATHS /usr/sbin /usr/local/sbin)
if(NOT GUESTUSER_PGBOUNCER)
  message(STATUS "pgbouncer not found: the PgBouncer tests are off (Debian: pgbouncer)")
  guestuser_add_check_test(test_pooler SOURCES test_pooler.c DB)
  return()
endif()

set(GUESTUSER_TEST_BOUNCER_DIR ${CMAKE_CURRENT_BINARY_DIR}/testpgbouncer)
set(_bouncer_script ${CMAKE_CURRENT_SOURCE_DIR}/pgbouncer-fixture.sh)
add_test(NAME pgbouncer_start COMMAND bash ${_bouncer_script} start
  ${GUESTUSER_TEST_BOUNCER_DIR} ${GUESTUSER_TEST_PG_DIR})
add_test(NAME pgbouncer_stop COMMAND bash ${_bouncer_script} stop ${GUESTUSER_TEST_BOUNCER_DIR})
set_tests_properties(pgbouncer_start PROPERTIES FIXTURES_SETUP pgbouncer FIXTURES_REQUIRED pg)
set_tests_properties(pgbouncer_stop PROPERTIES FIXTURES_CLEANUP pgbouncer FIXTURES_REQUIRED pg)
set(_bouncer_conninfo ${GUESTUSER_TEST_BOUNCER_DIR}/conninfo)

# A second one that ignores `options` instead of refusing it, with two
# server connections: nothing is refused, so AUTO must find the pooler by
# what it does to prepared statements.
set(_lenient_dir ${CMAKE_CURRENT_BINARY_DIR}/testpgbouncer-lenient)
add_test(NAME pgbouncer_lenient_start COMMAND ${CMAKE_COMMAND} -E env
  PGBOUNCER_IGNORE=extra_float_digits,options PGBOUNCER_POOL_SIZE=2
  bash ${_bouncer_script} start ${_lenient_dir} ${GUESTUSER_TEST_PG_DIR})
add_test(NAME pgbouncer_lenient_stop COMMAND bash ${_bouncer_script} stop ${_lenient_dir})
set_tests_properties(pgbouncer_lenient_start PROPERTIES FIXTURES_SETUP pgbouncer_lenient
  FIXTURES_REQUIRED pg)
set_tests_properties(pgbouncer_lenient_stop PROPERTIES FIXTURES_CLEANUP pgbouncer_lenient
  FIXTURES_REQUIRED pg)

# Modes, detection and cancelling: against PostgreSQL and PgBouncer both.
guestuser_add_check_test(test_pooler SOURCES test_pooler.c DB)
set_tests_properties(test_pooler PROPERTIES FIXTURES_REQUIRED "pg;pgbouncer;pgbouncer_lenient"
  ENVIRONMENT "GUESTUSER_TEST_CONNINFO_FILE=${GUESTUSER_TEST_PG_DIR}/conninfo;GUESTUSER_TEST_PGBOUNCER_CONNINFO_FILE=${_bouncer_conninfo};GUESTUSER_TEST_PGBOUNCER_LENIENT_CONNINFO_FILE=${_lenient_dir}/conninfo;CK_DEFAULT_TIMEOUT=120")

foreach(_suite test_guards test_convert test_login test_cleanup test_app_db test_users
    test_password_change test_identities test_email test_email_views test_email_signup
    test_demo_notes test_demo_accounts test_loop)
  if(NOT TEST ${_suite})
    continue()
  endif()
  add_test(NAME pgbouncer_${_suite} COMMAND ${_suite})
  set_tests_properties(pgbouncer_${_suite} PROPERTIES FIXTURES_REQUIRED "pg;pgbouncer"
    TIMEOUT 300 RESOURCE_LOCK ${_suite} ENVIRONMENT
    "GUESTUSER_TEST_CONNINFO_FILE=${_bouncer_conninfo};GUESTUSER_TEST_DB_POOLER=transaction;GUESTUSER_PG_SCRIPT=${GUESTUSER_PG_SCRIPT};CK_DEFAULT_TIMEOUT=120")
  set_tests_properties(${_suite} PROPERTIES RESOURCE_LOCK ${_suite})
endforeach()

# The demo and the tool find PgBouncer themselves (db_pooler AUTO).
if(TEST demo_servers)
  add_test(NAME pgbouncer_demo_servers COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/demo-servers.sh
    $<TARGET_FILE:guestuser-demo> ${_bouncer_conninfo} ${_demo_server_names})
  set_tests_properties(pgbouncer_demo_servers PROPERTIES FIXTURES_REQUIRED "pg;pgbouncer"
    TIMEOUT 120 RESOURCE_LOCK demo_servers)
  set_tests_properties(demo_servers PROPERTIES RESOURCE_LOCK demo_servers)
endif()
if(TEST test_cli)
  add_test(NAME pgbouncer_test_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh
    $<TARGET_FILE:guestuser_tool> ${_bouncer_conninfo})
  set_tests_properties(pgbouncer_test_cli PROPERTIES FIXTURES_REQUIRED "pg;pgbouncer"
    TIMEOUT 300 RESOURCE_LOCK test_cli)
  set_tests_properties(test_cli PROPERTIES RESOURCE_LOCK test_cli)
endif()
