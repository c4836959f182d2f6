# A real SMTP server on loopback for the mail tests (tests/smtp/README.md):
# Debian's python3-aiosmtpd, started and stopped by ctest as the fixture
# `smtp`; its addresses and credentials in ${GUESTUSER_SMTP_ENV_FILE}, what
# it receives under BUILD/tests/smtp/mail. The fixture fails with the
# reason when python3-aiosmtpd is missing (scripts/deps.sh installs it).
#
# guestuser_smtp_test(TEST) marks a test as needing the fixture: it runs
# after smtp_start, is told where the env file is (SMTP_ENV_FILE), and, if
# TEST is also an executable, links the C helpers (smtp/smtp_env.h).
set(GUESTUSER_SMTP_DIR ${CMAKE_CURRENT_BINARY_DIR}/smtp)
set(GUESTUSER_SMTP_ENV_FILE ${GUESTUSER_SMTP_DIR}/env)
set(_smtp_script ${CMAKE_CURRENT_SOURCE_DIR}/smtp/smtp-fixture.sh)
add_test(NAME smtp_start COMMAND bash ${_smtp_script} start ${GUESTUSER_SMTP_DIR})
add_test(NAME smtp_stop COMMAND bash ${_smtp_script} stop ${GUESTUSER_SMTP_DIR})
set_tests_properties(smtp_start PROPERTIES FIXTURES_SETUP smtp TIMEOUT 60)
set_tests_properties(smtp_stop PROPERTIES FIXTURES_CLEANUP smtp TIMEOUT 60)

# The C helpers: the env file, the received messages, stopping and
# resuming a server, a server of a test's own (BUILD/tests/smtp-private).
add_library(guestuser_smtp_testlib STATIC smtp/smtp_env.c)
target_include_directories(guestuser_smtp_testlib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/smtp)
target_compile_definitions(guestuser_smtp_testlib PRIVATE
  GUESTUSER_SMTP_ENV_FILE="${GUESTUSER_SMTP_ENV_FILE}"
  GUESTUSER_SMTP_SCRIPT="${_smtp_script}"
  GUESTUSER_SMTP_INSPECT="${CMAKE_CURRENT_SOURCE_DIR}/smtp/smtp-inspect.py"
  GUESTUSER_SMTP_PRIVATE_BASE="${CMAKE_CURRENT_BINARY_DIR}/smtp-private")
target_link_libraries(guestuser_smtp_testlib PUBLIC Threads::Threads
  PRIVATE guestuser_flags)

function(guestuser_smtp_test name)
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED smtp)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
    "SMTP_ENV_FILE=${GUESTUSER_SMTP_ENV_FILE}")
  if(TARGET ${name})
    target_link_libraries(${name} PRIVATE guestuser_smtp_testlib)
  endif()
endfunction()

# libguestuser-mail against the fixture (no database): headers and MIME,
# encoded subjects, AUTH, STARTTLS and smtps, 4xx/5xx, a server that is
# down then back, header injection.
if(TARGET guestuser_mail)
  guestuser_add_check_test(test_smtp SOURCES test_smtp.c LIBS guestuser::mail)
  guestuser_smtp_test(test_smtp)
  set_tests_properties(test_smtp PROPERTIES TIMEOUT 900)
  # The outbox end to end: resets requested while a real SMTP server is
  # down arrive once after it is back, through two senders.
  guestuser_add_check_test(test_email_smtp SOURCES test_email_smtp.c
    LIBS guestuser::mail DB)
  guestuser_smtp_test(test_email_smtp)
  # libguestuser-mail exports exactly its public API.
  add_test(NAME exported_symbols_mail COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check-symbols.sh
    $<TARGET_FILE:guestuser_mail> ${PROJECT_SOURCE_DIR}/abi/symbols-mail.txt)
endif()
