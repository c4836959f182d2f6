/* Defaults, validation and the shared context's life cycle. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "core/core.h"

#define GUEST__HASH_CONCURRENCY_MAX 1024u

static const char *const default_agents[] = {"Googlebot",
                                             "Mediapartners-Google",
                                             "Bingbot",
                                             "Slurp",
                                             "DuckDuckBot",
                                             "Baiduspider",
                                             "Yandex(Mobile)?Bot",
                                             "Sogou",
                                             "Exabot",
                                             "facebot",
                                             "facebookexternalhit",
                                             "ia_archiver",
                                             NULL};

const char *const *guest_default_blocked_agents(void)
{
    return default_agents;
}

/* One number from the environment into *out, when set: @p min..@p max. */
static guest_status env_number(const char *name, long long min, long long max,
                               long long *out, bool *set, guest_error *err)
{
    const char *v = getenv(name);
    *set = v && *v;
    if (!*set)
        return GUEST_OK;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max)
        return guest__fail(err, GUEST_ERR_CONFIG,
                           "%s must be a number %lld..%lld (got \"%.40s\")",
                           name, min, max, v);
    *out = n;
    return GUEST_OK;
}

static const char *env_text(const char *name, const char *keep)
{
    const char *v = getenv(name);
    return v && *v ? v : keep;
}

guest_status guest_config_from_env(guest_config *cfg, guest_error *err)
{
    if (!cfg)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL cfg");
    /* The numbers first, all checked before any field changes. */
    long long pool = 0, timeout = 0, age = 0, iterations = 0;
    bool has_pool, has_timeout, has_age, has_iterations;
    guest_status st;
    if ((st = env_number("GUESTUSER_DB_POOL_SIZE", 1, 1000, &pool, &has_pool,
                         err)) != GUEST_OK ||
        (st = env_number("GUESTUSER_DB_TIMEOUT_MS", 1, 86400000, &timeout,
                         &has_timeout, err)) != GUEST_OK ||
        (st = env_number("GUESTUSER_MAX_AGE", 0, INT64_MAX / 1000000, &age,
                         &has_age, err)) != GUEST_OK ||
        (st = env_number("GUESTUSER_PASSWORD_ITERATIONS", 0, 2147483647,
                         &iterations, &has_iterations, err)) != GUEST_OK)
        return st;
    cfg->db_conninfo = env_text("GUESTUSER_DB", cfg->db_conninfo);
    cfg->db_read_conninfo =
        env_text("GUESTUSER_DB_READ", cfg->db_read_conninfo);
    cfg->db_schema = env_text("GUESTUSER_SCHEMA", cfg->db_schema);
    if (has_pool)
        cfg->db_pool_size = (unsigned)pool;
    if (has_timeout)
        cfg->db_timeout_ms = (unsigned)timeout;
    if (has_age)
        cfg->max_age = age;
    if (has_iterations)
        cfg->password_iterations = (unsigned)iterations;
    return GUEST_OK;
}

const char *guest_version(void)
{
    return GUESTUSER_VERSION_STRING;
}

/* The defaults, into a whole struct of this library's size. */
static void config_defaults(guest_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->enabled = true;
    cfg->max_age = 1209600;
    cfg->name_generator = guest_name_uuid;
    cfg->name_prefix = "Guest";
    cfg->name_suffix_digits = 4;
    cfg->name_max_attempts = 10;
    cfg->blocked_user_agents = default_agents;
    cfg->login_url = "/accounts/login/";
    cfg->login_redirect_url = "/accounts/profile/";
    cfg->convert_url = "/convert/";
    cfg->convert_redirect_url = "/convert/success/";
    cfg->redirect_field_name = "next";
    cfg->cookie_name = "sessionid";
    cfg->cookie_path = "/";
    cfg->cookie_samesite = "Lax";
    cfg->db_schema = "guestuser";
    cfg->db_pool_size = 8;
    cfg->db_timeout_ms = 5000;
    cfg->auto_migrate = true;
    /* Django 6.1's PBKDF2PasswordHasher default (current as of 2026). */
    cfg->password_iterations = 1500000;
    cfg->password_min_length = 8;
    cfg->password_checks = GUEST_PW_CHECK_ALL;
    cfg->csrf_cookie_name = "csrftoken";
    cfg->max_body_size = 65536;
    cfg->hash_wait_ms = 2000;
    cfg->guest_rate_window = 3600;
    cfg->identity_signup = true;
    cfg->password_reset_timeout = 3600;
    cfg->email_verify_timeout = 259200;
    cfg->password_reset_rate_limit = 10;
    cfg->password_reset_email_limit = 3;
    cfg->mail_poll_ms = 1000;
    cfg->mail_max_attempts = 12;
    cfg->mail_keep_sent_s = 604800;
    cfg->login_rate_limit = 5;
    cfg->login_address_rate_limit = 100;
    cfg->ipv6_prefix56_multiplier = 4;
    cfg->ipv6_prefix48_multiplier = 8;
    cfg->session_cache_size = 10000;
}

/* The size of guest_config in 1.0, the smallest a program can have: 1.x
 * appends fields only. */
#define CONFIG_SIZE_1_0                                                        \
    (offsetof(guest_config, session_cache_listen_conninfo) +                   \
     sizeof(const char *))

#undef guest_config_init
void guest_config_init_size(guest_config *cfg, size_t size)
{
    guest_config d;
    config_defaults(&d);
    /* A program built against a newer library has a larger struct: the
     * tail we do not know is zeroed, and guest_ctx_new() refuses it. */
    guest_sized_init(cfg, size, &d, sizeof d);
}

const guest_config *guest_ctx_config(const guest_ctx *ctx)
{
    return ctx ? &ctx->cfg : NULL;
}

/* Copies *field into storage the context owns, falling back to @p def. */
static bool own_string(guest_ctx *ctx, const char **field, const char *def)
{
    guest__core *core = ctx->core;
    const char *src = *field ? *field : def;
    if (!src)
        return true;
    char **grown =
        realloc(core->owned, (core->owned_count + 1) * sizeof *grown);
    if (!grown)
        return false;
    core->owned = grown;
    char *copy = guest__strdup(src);
    if (!copy)
        return false;
    core->owned[core->owned_count++] = copy;
    *field = copy;
    return true;
}

static bool valid_token(const char *s)
{
    /* Cookie names and SameSite values become header text: keep them to
     * RFC 6265 token characters so no setting can split a header. */
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(*s > 0x20 && *s < 0x7f) || strchr("()<>@,;:\\\"/[]?={}", *s))
            return false;
    return true;
}

static bool valid_schema(const char *s)
{
    if (!*s || strlen(s) > 63 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Hashing is CPU-bound: one core stays free for every other request. */
static unsigned auto_hash_concurrency(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 1)
        return 1;
    return cores - 1 > GUEST__HASH_CONCURRENCY_MAX ? GUEST__HASH_CONCURRENCY_MAX
                                                   : (unsigned)(cores - 1);
}

static guest_status check_config(const guest_config *c, guest_error *err)
{
#define BAD(...) guest__fail(err, GUEST_ERR_CONFIG, __VA_ARGS__)
    if (c->max_age < 0)
        return BAD("max_age must be a positive number of seconds, or 0 for "
                   "the one the site recorded");
    if (!c->name_generator)
        return BAD("name_generator must not be NULL");
    if (c->name_suffix_digits < 1 || c->name_suffix_digits > 18)
        return BAD("name_suffix_digits must be 1..18 (got %u)",
                   c->name_suffix_digits);
    if (c->name_max_attempts < 1)
        return BAD("name_max_attempts must be at least 1");
    if (!valid_token(c->cookie_name))
        return BAD("cookie_name is not a valid cookie name");
    if (strcmp(c->cookie_samesite, "Lax") != 0 &&
        strcmp(c->cookie_samesite, "Strict") != 0 &&
        strcmp(c->cookie_samesite, "None") != 0)
        return BAD("cookie_samesite must be Lax, Strict or None");
    if (!strcmp(c->cookie_samesite, "None") && !c->cookie_secure)
        return BAD(
            "cookie_samesite None needs cookie_secure (browsers drop it)");
    if (!valid_token(c->csrf_cookie_name))
        return BAD("csrf_cookie_name is not a valid cookie name");
    if (c->secure_proxy_header && !valid_token(c->secure_proxy_header))
        return BAD("secure_proxy_header is not a valid header name");
    const char *urls[] = {c->cookie_path,         c->cookie_domain,
                          c->login_url,           c->login_redirect_url,
                          c->convert_url,         c->convert_redirect_url,
                          c->required_anon_url,   c->required_user_url,
                          c->redirect_field_name, c->name_prefix};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
        if (urls[i] && (guest__has_ctl(urls[i]) || strchr(urls[i], ';')))
            return BAD("a URL, cookie or name setting holds a control "
                       "character or ';'");
    if (!*c->redirect_field_name)
        return BAD("redirect_field_name must not be empty");
    if (strlen(c->name_prefix) > 100)
        return BAD("name_prefix is longer than 100 bytes");
    if (!valid_schema(c->db_schema))
        return BAD("db_schema must match [a-z_][a-z0-9_]* (got \"%s\")",
                   c->db_schema);
    if (c->db_pool_size < 1 || c->db_pool_size > 1000)
        return BAD("db_pool_size must be 1..1000");
    /* An hour is far past any request; the cap also keeps every wait a
     * valid poll() timeout. */
    if (c->db_timeout_ms < 100 || c->db_timeout_ms > 3600000)
        return BAD("db_timeout_ms must be 100..3600000 (got %u)",
                   c->db_timeout_ms);
    if (c->db_pooler != GUEST_DB_POOLER_AUTO &&
        c->db_pooler != GUEST_DB_POOLER_NONE &&
        c->db_pooler != GUEST_DB_POOLER_TRANSACTION)
        return BAD("db_pooler must be GUEST_DB_POOLER_AUTO, _NONE or "
                   "_TRANSACTION (got %d)",
                   (int)c->db_pooler);
    if (c->password_iterations > 2147483647u)
        return BAD("password_iterations must be 0..2147483647");
    if (c->max_body_size < 1024)
        return BAD("max_body_size must be at least 1024");
    if (c->hash_concurrency > GUEST__HASH_CONCURRENCY_MAX)
        return BAD("hash_concurrency must be 0 (auto) or 1..%u (got %u)",
                   GUEST__HASH_CONCURRENCY_MAX, c->hash_concurrency);
    if (c->hash_wait_ms > 60000)
        return BAD("hash_wait_ms must be 0..60000 (got %u)", c->hash_wait_ms);
    if (c->guest_rate_limit > 1000000000u)
        return BAD("guest_rate_limit must be 0..1000000000 (got %u)",
                   c->guest_rate_limit);
    if (c->guest_rate_window < 1 || c->guest_rate_window > 2592000)
        return BAD("guest_rate_window must be 1..2592000 seconds (got %u)",
                   c->guest_rate_window);
    if (c->guest_rate_limit_action != GUEST_RATE_ACTION_ANONYMOUS &&
        c->guest_rate_limit_action != GUEST_RATE_ACTION_429)
        return BAD("guest_rate_limit_action must be "
                   "GUEST_RATE_ACTION_ANONYMOUS or GUEST_RATE_ACTION_429");
    if (c->login_rate_limit > 1000000000u)
        return BAD("login_rate_limit must be 0..1000000000 (got %u)",
                   c->login_rate_limit);
    if (c->login_address_rate_limit > 1000000000u)
        return BAD("login_address_rate_limit must be 0..1000000000 (got %u)",
                   c->login_address_rate_limit);
    if (c->ipv6_prefix56_multiplier > 65536 ||
        c->ipv6_prefix48_multiplier > 65536)
        return BAD("ipv6_prefix56_multiplier and ipv6_prefix48_multiplier "
                   "must be 0..65536 (got %u, %u)",
                   c->ipv6_prefix56_multiplier, c->ipv6_prefix48_multiplier);
    if (c->max_guests < 0)
        return BAD("max_guests must not be negative");
    if (c->max_guests_per_network < 0)
        return BAD("max_guests_per_network must not be negative");
    if (c->password_reset_timeout < 60 || c->password_reset_timeout > 604800)
        return BAD("password_reset_timeout must be 60..604800 s (got %u)",
                   c->password_reset_timeout);
    if (c->email_verify_timeout < 60 || c->email_verify_timeout > 2592000)
        return BAD("email_verify_timeout must be 60..2592000 s (got %u)",
                   c->email_verify_timeout);
    if (c->mail_poll_ms < 10 || c->mail_poll_ms > 60000)
        return BAD("mail_poll_ms must be 10..60000 (got %u)", c->mail_poll_ms);
    if (c->mail_max_attempts < 1 || c->mail_max_attempts > 100)
        return BAD("mail_max_attempts must be 1..100 (got %u)",
                   c->mail_max_attempts);
    if ((unsigned)c->signup_email > GUEST_EMAIL_REQUIRED)
        return BAD("signup_email must be GUEST_EMAIL_OFF, _OPTIONAL or "
                   "_REQUIRED (got %d)",
                   (int)c->signup_email);
    if (c->password_reset_rate_limit > 1000000000u ||
        c->password_reset_email_limit > 1000000000u)
        return BAD("password reset limits must be 0..1000000000");
    if (c->session_cache_ttl > GUEST_SESSION_CACHE_TTL_MAX)
        return BAD("session_cache_ttl must be 0 (off) or 1..%u seconds (got "
                   "%u)",
                   GUEST_SESSION_CACHE_TTL_MAX, c->session_cache_ttl);
    if (c->session_cache_ttl &&
        (c->session_cache_size < 1 ||
         c->session_cache_size > GUEST_SESSION_CACHE_SIZE_MAX))
        return BAD("session_cache_size must be 1..%u while session_cache_ttl "
                   "is on (got %u)",
                   GUEST_SESSION_CACHE_SIZE_MAX, c->session_cache_size);
#undef BAD
    return guest__check_secret_keys(c->secret_keys, err);
}

static guest_status compile_agents(guest_ctx *ctx, guest_error *err)
{
    guest__core *core = ctx->core;
    size_t n = 0;
    while (ctx->cfg.blocked_user_agents && ctx->cfg.blocked_user_agents[n])
        n++;
    core->agents = calloc(n + 1, sizeof *core->agents);
    core->agent_re = calloc(n ? n : 1, sizeof *core->agent_re);
    if (!core->agents || !core->agent_re)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        core->agents[i] = ctx->cfg.blocked_user_agents[i];
        if (!own_string(ctx, &core->agents[i], NULL))
            return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
        int rc = regcomp(&core->agent_re[i], core->agents[i],
                         REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &core->agent_re[i], why, sizeof why);
            return guest__fail(err, GUEST_ERR_CONFIG,
                               "blocked_user_agents[%zu] \"%s\" does not "
                               "compile: %s",
                               i, core->agents[i], why);
        }
        core->agent_count = i + 1;
    }
    ctx->cfg.blocked_user_agents = core->agents;
    return GUEST_OK;
}

bool guest_is_blocked_agent(const guest_ctx *ctx, const char *user_agent)
{
    if (!ctx || !user_agent)
        return false;
    for (size_t i = 0; i < ctx->core->agent_count; i++)
        if (regexec(&ctx->core->agent_re[i], user_agent, 0, NULL, 0) == 0)
            return true;
    return false;
}

static guest_status copy_config(guest_ctx *ctx, const guest_config *in)
{
    guest_config *c = &ctx->cfg;
    /* The program's fields over the defaults of any it does not have;
     * guest_ctx_new() checked the size. */
    config_defaults(c);
    if (!guest_sized_read(in, CONFIG_SIZE_1_0, c, sizeof *c))
        return GUEST_ERR_CONFIG;
    bool ok = own_string(ctx, &c->name_prefix, "Guest") &&
              own_string(ctx, &c->login_url, "/accounts/login/") &&
              own_string(ctx, &c->login_redirect_url, "/accounts/profile/") &&
              own_string(ctx, &c->convert_url, "/convert/") &&
              own_string(ctx, &c->convert_redirect_url, "/convert/success/") &&
              own_string(ctx, &c->required_anon_url, c->login_url) &&
              own_string(ctx, &c->required_user_url, c->login_redirect_url) &&
              own_string(ctx, &c->redirect_field_name, "next") &&
              own_string(ctx, &c->cookie_name, "sessionid") &&
              own_string(ctx, &c->cookie_path, "/") &&
              own_string(ctx, &c->cookie_domain, NULL) &&
              own_string(ctx, &c->cookie_samesite, "Lax") &&
              own_string(ctx, &c->db_conninfo, "") &&
              own_string(ctx, &c->db_schema, "guestuser") &&
              own_string(ctx, &c->csrf_cookie_name, "csrftoken") &&
              own_string(ctx, &c->secure_proxy_header, NULL) &&
              own_string(ctx, &c->trusted_proxies, NULL) &&
              own_string(ctx, &c->allowed_hosts, NULL) &&
              own_string(ctx, &c->db_read_conninfo, NULL) &&
              own_string(ctx, &c->mail_from, NULL) &&
              own_string(ctx, &c->public_url, NULL) &&
              own_string(ctx, &c->session_cache_listen_conninfo, NULL);
    if (c->mail_from && !*c->mail_from)
        c->mail_from = NULL;
    if (c->public_url && !*c->public_url)
        c->public_url = NULL;
    if (c->cookie_domain && !*c->cookie_domain)
        c->cookie_domain = NULL;
    if (c->db_read_conninfo && !*c->db_read_conninfo)
        c->db_read_conninfo = NULL;
    if (c->session_cache_listen_conninfo && !*c->session_cache_listen_conninfo)
        c->session_cache_listen_conninfo = NULL;
    return ok ? GUEST_OK : GUEST_ERR_NOMEM;
}

guest_status guest_ctx_new(const guest_config *cfg, guest_ctx **out,
                           guest_error *err)
{
    if (!cfg || !out)
        return guest__fail(err, GUEST_ERR_INVALID, "cfg and out are required");
    *out = NULL;
    guest_ctx *ctx = calloc(1, sizeof *ctx);
    guest__core *core = calloc(1, sizeof *core);
    if (!ctx || !core) {
        free(ctx);
        free(core);
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    ctx->core = core;
    guest_status st;
    if (cfg->size < CONFIG_SIZE_1_0 || cfg->size > sizeof(guest_config)) {
        st = guest__fail(err, GUEST_ERR_CONFIG,
                         "guest_config.size is %zu, not %zu..%zu: fill the "
                         "struct with guest_config_init() (and build "
                         "against this library's headers)",
                         cfg->size, (size_t)CONFIG_SIZE_1_0,
                         sizeof(guest_config));
        goto fail;
    }
    if ((st = copy_config(ctx, cfg)) != GUEST_OK) {
        guest__fail(err, st, "out of memory");
        goto fail;
    }
    if ((st = check_config(&ctx->cfg, err)) != GUEST_OK ||
        (st = compile_agents(ctx, err)) != GUEST_OK ||
        (st = guest__proxies_parse(ctx, err)) != GUEST_OK ||
        (st = guest__hosts_parse(ctx, err)) != GUEST_OK)
        goto fail;
    atomic_store(&ctx->core->name_digits, ctx->cfg.name_suffix_digits);
    if (!ctx->cfg.hash_concurrency)
        ctx->cfg.hash_concurrency = auto_hash_concurrency();
    if ((st = guest__hashslots_new(ctx->cfg.hash_concurrency,
                                   &ctx->core->hash_slots)) != GUEST_OK) {
        guest__fail(err, st, "cannot create the password-hash slots");
        goto fail;
    }
    if (ctx->cfg.session_cache_ttl &&
        (st = guest__session_cache_new(&ctx->cfg, &ctx->core->session_cache)) !=
            GUEST_OK) {
        guest__fail(err, st, "out of memory for the session cache");
        goto fail;
    }
    if ((st = guest__keys_copy(ctx)) != GUEST_OK) {
        guest__fail(err, st, "out of memory");
        goto fail;
    }
    if ((st = guest__sql_build(&ctx->sql, &ctx->cfg)) != GUEST_OK) {
        guest__fail(err, st, "out of memory");
        goto fail;
    }
    if ((st = guest__pool_new(ctx, ctx->cfg.db_conninfo, &ctx->pool, err)) !=
        GUEST_OK)
        goto fail;
    /* The replica is not contacted here: it may be down while the primary
     * serves, which must not stop a start. */
    if (ctx->cfg.db_read_conninfo &&
        (st = guest__pool_new(ctx, ctx->cfg.db_read_conninfo, &ctx->read_pool,
                              err)) != GUEST_OK)
        goto fail;
    /* Migrating (or checking) at start both proves the database is
     * reachable and makes every later statement able to assume the schema
     * exists at this version. */
    st = ctx->cfg.auto_migrate ? guest__migrate(ctx, err)
                               : guest__schema_check(ctx, err);
    /* A site records its hashing cost and guest age for the tool; the
     * tool (0) takes them, so that the hashes it writes cost what the
     * site's do and its cleanup keeps what the site still honours. */
    if (st == GUEST_OK)
        st = guest__store_site_settings(ctx, ctx->cfg.auto_migrate, err);
    /* After the schema check: the triggers that notify the cache are part
     * of the schema. A pooler detected by now (db_pooler AUTO) counts. */
    if (st == GUEST_OK)
        st = guest__session_cache_listen(
            ctx, guest__pool_transaction_mode(ctx->pool), err);
    if (st != GUEST_OK)
        goto fail;
    *out = ctx;
    return GUEST_OK;
fail:
    guest_ctx_free(ctx);
    return st;
}

void guest_ctx_free(guest_ctx *ctx)
{
    if (!ctx)
        return;
    guest__core *core = ctx->core;
    /* First: its thread uses the cache, the counters and the config. */
    guest__session_cache_unlisten(ctx);
    guest__pool_free(ctx->pool);
    guest__pool_free(ctx->read_pool);
    guest__hashslots_free(core->hash_slots);
    guest__session_cache_free(core->session_cache);
    guest__sql_free(&ctx->sql);
    guest__keys_free(ctx);
    for (size_t i = 0; i < core->agent_count; i++)
        regfree(&core->agent_re[i]);
    free(core->agent_re);
    free(core->agents);
    free(core->proxies);
    guest__hosts_free(ctx);
    for (size_t i = 0; i < core->owned_count; i++)
        free(core->owned[i]);
    free(core->owned);
    free(core);
    free(ctx);
}
