/* What a site records in its schema for the tools that share it
 * (site_settings): the PBKDF2 iteration count it hashes with and the age
 * at which its guests expire. A tool that is not told otherwise (0) takes
 * them, so that its hashes cost what the site's do and its cleanup never
 * deletes a guest whose cookie the site still honours. */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

/* What a tool takes when nothing is recorded: Django 6.1's count and the
 * library's default age. */
#define ITERATIONS_FALLBACK 1500000u
#define MAX_AGE_FALLBACK 1209600

static guest_status record(guest_ctx *ctx, guest_error *err)
{
    char iterations[16], age[24];
    snprintf(iterations, sizeof iterations, "%u", ctx->cfg.password_iterations);
    snprintf(age, sizeof age, "%lld", (long long)ctx->cfg.max_age);
    guest__params p = {0};
    guest__param_text(&p, iterations);
    guest__param_text(&p, age);
    /* Several sites on one schema: the last to start is recorded; they
     * should agree anyway (docs/accounts.md). The WHERE keeps a restart
     * with the same values from writing anything. */
    return guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "INSERT INTO @.site_settings (name, value)"
                               " VALUES ('password_iterations', $1),"
                               " ('max_age', $2)"
                               " ON CONFLICT (name) DO UPDATE"
                               " SET value = EXCLUDED.value"
                               " WHERE site_settings.value"
                               " <> EXCLUDED.value",
                       .params = &p},
        NULL, err);
}

guest_status guest__store_site_settings(guest_ctx *ctx, bool write,
                                        guest_error *err)
{
    guest_config *c = &ctx->cfg;
    if (write && c->password_iterations && c->max_age)
        return record(ctx, err);
    if (c->password_iterations && c->max_age)
        return GUEST_OK;
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT name, value FROM @.site_settings"
                               " WHERE name IN ('password_iterations',"
                               " 'max_age')"},
        &res, err);
    unsigned long long iterations = 0;
    long long age = 0;
    for (int i = 0; st == GUEST_OK && i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0), *v = PQgetvalue(res, i, 1);
        if (name[0] == 'p')
            iterations = strtoull(v, NULL, 10);
        else
            age = strtoll(v, NULL, 10);
    }
    PQclear(res);
    if (!c->password_iterations)
        c->password_iterations = iterations >= 1 && iterations <= 2147483647u
                                     ? (unsigned)iterations
                                     : ITERATIONS_FALLBACK;
    if (!c->max_age)
        c->max_age = age > 0 ? age : MAX_AGE_FALLBACK;
    /* A program that takes either value from the schema (a tool) records
     * nothing: only a site that sets both is the source. */
    return st;
}
