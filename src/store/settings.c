/* What a site records in its schema for the tools that share it
 * (site_settings): the PBKDF2 iteration count it hashes with. */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

/* Django 6.1's count, for a tool that finds nothing recorded. */
#define ITERATIONS_FALLBACK 1500000u

guest_status guest__store_site_iterations(guest_ctx *ctx, bool record,
                                          guest_error *err)
{
    unsigned *n = &ctx->cfg.password_iterations;
    if (record && *n) {
        char v[16];
        snprintf(v, sizeof v, "%u", *n);
        guest__params p = {0};
        guest__param_text(&p, v);
        /* Several sites on one schema: the last to start is recorded; they
         * should agree anyway (docs/accounts.md). */
        return guest__sql_run(
            ctx, NULL,
            &(guest__stmt){.tmpl = "INSERT INTO @.site_settings (name, value)"
                                   " VALUES ('password_iterations', $1)"
                                   " ON CONFLICT (name) DO UPDATE"
                                   " SET value = EXCLUDED.value"
                                   " WHERE site_settings.value"
                                   " <> EXCLUDED.value",
                           .params = &p},
            NULL, err);
    }
    if (*n)
        return GUEST_OK;
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT value FROM @.site_settings"
                               " WHERE name = 'password_iterations'"},
        &res, err);
    *n = ITERATIONS_FALLBACK;
    if (st == GUEST_OK && PQntuples(res) == 1) {
        unsigned long long v = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        if (v >= 1 && v <= 2147483647u)
            *n = (unsigned)v;
    }
    PQclear(res);
    return st;
}
