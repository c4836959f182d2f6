/* Links each part of the package the project asked for and calls into it. */
#include <stdio.h>

#include <guestuser/guestuser.h>
#ifdef CONSUMER_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef CONSUMER_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif
#ifdef CONSUMER_DB
#include <libpq-fe.h>
#endif
#ifdef CONSUMER_CONFORMANCE
#include <guestuser/conformance.h>
#endif
#ifdef CONSUMER_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif
#ifdef CONSUMER_TESTING
#include <guestuser/testing.h>
#endif

int main(void)
{
#ifdef CONSUMER_MHD
    guest_mhd_free(NULL);
#endif
#ifdef CONSUMER_CIVETWEB
    guest_civetweb_free(NULL);
#endif
#ifdef CONSUMER_DB
    /* libpq's header and library come with the component */
    printf("libpq %d\n", PQlibVersion());
    guest_db_return(NULL, NULL);
#endif
#ifdef CONSUMER_ULFIUS
    guest_ulfius_free(NULL);
#endif
#ifdef CONSUMER_TESTING
    guest_test_client_free(NULL);
#endif
    guest_config cfg;
    guest_config_init(&cfg);
#ifdef CONSUMER_CONFORMANCE
    guest_conformance_config(&cfg);
    if (!guest_conformance_routes())
        return 1;
#endif
    printf("guestuser %s\n", guest_version());
    return 0;
}
