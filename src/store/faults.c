/* Faults a test injects into the statements of this process: the next N
 * statements whose prepared name or text contains a substring fail as the
 * test chose. Compiled only into the test library guestuser_faults
 * (GUESTUSER_FAULTS), never into libguestuser: a shipped library has no
 * switch that makes it fail on purpose. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "store/store.h"

/* One fault for the whole process: tests arm it between requests, and the
 * library's threads (the listener, cleanup) take it only when it matches
 * their statement, so a test names one precisely. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static guest__fault_kind fault_kind;
static unsigned fault_left, fault_fired;
static char fault_match[128];
static char fault_instead[160];

void guest__fault_arm(const guest__fault *f)
{
    pthread_mutex_lock(&fault_lock);
    fault_fired = 0;
    fault_left = f ? f->count : 0;
    fault_kind = f ? f->kind : GUEST__FAULT_DEAD;
    snprintf(fault_match, sizeof fault_match, "%s",
             f && f->match ? f->match : "");
    if (f && f->kind == GUEST__FAULT_SQLSTATE)
        /* A real error from the server, with the code the test asked for:
         * the library reads its SQLSTATE as it reads any other. */
        snprintf(fault_instead, sizeof fault_instead,
                 "DO $$BEGIN RAISE EXCEPTION 'injected fault' USING"
                 " ERRCODE = '%.5s'; END$$",
                 f->sqlstate ? f->sqlstate : "XX000");
    else
        snprintf(fault_instead, sizeof fault_instead, "ROLLBACK");
    pthread_mutex_unlock(&fault_lock);
}

unsigned guest__fault_fired(void)
{
    pthread_mutex_lock(&fault_lock);
    unsigned n = fault_fired;
    pthread_mutex_unlock(&fault_lock);
    return n;
}

const char *guest__fault_take(PGconn *conn, const char *name, const char *sql)
{
    pthread_mutex_lock(&fault_lock);
    bool hit = fault_left > 0 &&
               (!*fault_match || (name && strstr(name, fault_match)) ||
                (sql && strstr(sql, fault_match)));
    if (hit) {
        fault_left--;
        fault_fired++;
    }
    guest__fault_kind kind = fault_kind;
    pthread_mutex_unlock(&fault_lock);
    if (!hit)
        return NULL;
    if (kind != GUEST__FAULT_DEAD && kind != GUEST__FAULT_LOST)
        return fault_instead;
    /* Shut down, not closed: the descriptor stays libpq's to close, so no
     * other thread's new socket can be closed by mistake. */
    (void)shutdown(PQsocket(conn), SHUT_RDWR);
    /* Reading now meets the end, and libpq marks the connection bad, as
     * when a server's goodbye arrives between the pool's check and the
     * send. Unread, the send itself appears to succeed. */
    if (kind == GUEST__FAULT_DEAD)
        (void)PQconsumeInput(conn);
    return NULL;
}
