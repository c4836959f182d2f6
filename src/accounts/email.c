/* E-mail on accounts: password reset by a link, changing and verifying an
 * address. Every mail is queued in the outbox inside the transaction that
 * makes its link, so a link is never made without its mail, nor a mail
 * sent for a link that was rolled back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

#define MSG_BAD_EMAIL GUEST__MSG_BAD_EMAIL
#define MSG_EMAIL_TAKEN GUEST__MSG_EMAIL_TAKEN
#define MSG_PASSWORD_WRONG                                                     \
    "Your password was entered incorrectly. Please enter it again."
/* The per-address reset limit counts every address in one row family. */
#define RESET_WINDOW 3600

/* An address as a mail server takes it: one '@' between a local part and a
 * domain, printable, no blanks or brackets; at most GUEST_EMAIL_MAX bytes.
 * Deliberately loose (the link proves the address), but never a byte that
 * could reach a mail header. */
bool guest__email_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > GUEST_EMAIL_MAX || !at || at == s || !at[1] ||
        strchr(at + 1, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("<>()[],;:\\\"", *p))
            return false;
    return guest__utf8_valid(s, n);
}

static void lower_ascii(const char *s, char *out, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
    out[i] = '\0';
}

guest_status guest__email_need_mail(const guest_config *c, guest_error *err)
{
    if (!c->mail_from || !c->public_url)
        return guest__fail(err, GUEST_ERR_CONFIG,
                           "mail_from and public_url must be set to send "
                           "mail");
    return GUEST_OK;
}

/* PUBLIC_URL + path + token + "/"; caller frees. */
static char *link_to(const guest_config *c, const char *path, const char *token)
{
    size_t n = strlen(c->public_url);
    while (n && c->public_url[n - 1] == '/')
        n--;
    return guest__asprintf("%.*s%s%s/", (int)n, c->public_url, path, token);
}

/* Renders @p v and queues it in @p tx. */
static guest_status queue_mail(guest_db *tx, const guest_mail_vars *v,
                               guest_error *err)
{
    const guest_config *c = &tx->ctx->cfg;
    guest_mail_content m = {0};
    guest_status st = c->render_mail
                          ? c->render_mail(v, &m, c->render_mail_userdata)
                          : guest_mail_render_default(v, &m);
    if (st != GUEST_OK || !m.subject || !m.text) {
        if (st == GUEST_OK)
            st = GUEST_ERR_HOOK;
        guest__fail(err, st == GUEST_ERR_NOMEM ? st : GUEST_ERR_HOOK,
                    "the mail could not be rendered");
        st = st == GUEST_ERR_NOMEM ? st : GUEST_ERR_HOOK;
    } else if (strpbrk(m.subject, "\r\n")) {
        /* A subject is one header line: a line break would let a renderer
         * (or what it quotes) add headers. */
        st = guest__fail(err, GUEST_ERR_HOOK,
                         "a rendered mail subject holds a line break");
    } else {
        st = guest__outbox_put(tx, v->address, m.subject, m.text, m.html, err);
    }
    free(m.subject);
    free(m.text);
    free(m.html);
    return st;
}

/* The reset limits: per client address and per address asked for. */
static guest_status take_reset_places(guest_req *req, const char *email,
                                      guest_error *err)
{
    const guest_config *c = &req->ctx->cfg;
    char lower[GUEST_EMAIL_MAX + 1];
    lower_ascii(email, lower, sizeof lower);
    unsigned char subject[GUEST__SHA256_BYTES];
    if (guest__sha256(lower, strlen(lower), subject) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "cannot hash the address");
    guest__window_limit w[2];
    size_t n = 0;
    if (c->password_reset_rate_limit)
        w[n++] =
            (guest__window_limit){"reset", guest__req_client_key(req), NULL,
                                  c->password_reset_rate_limit, RESET_WINDOW};
    if (c->password_reset_email_limit)
        w[n++] =
            (guest__window_limit){"reset_email", "any", subject,
                                  c->password_reset_email_limit, RESET_WINDOW};
    bool admitted;
    int64_t wait;
    guest_status st = guest__window_take(req->ctx, w, n, &admitted, &wait, err);
    if (st == GUEST_OK && !admitted) {
        guest__count(req->ctx, GUEST__C_RATE_LIMITED);
        req->retry_after = wait;
        st = guest__fail(err, GUEST_ERR_RATE_LIMITED,
                         "too many password reset requests; retry in %lld s",
                         (long long)wait);
    }
    return st;
}

guest_status guest_password_reset_request(guest_req *req, const char *email,
                                          guest_error *err)
{
    if (!req || !email)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    guest_status st = guest__email_need_mail(c, err);
    if (st != GUEST_OK)
        return st;
    /* Not an address anyone can have: the same answer, and no work. */
    if (!guest__email_ok(email))
        return GUEST_OK;
    if ((st = take_reset_places(req, email, err)) != GUEST_OK)
        return st;
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char hash[GUEST__SHA256_BYTES];
    if ((st = guest__session_new(token, hash)) != GUEST_OK)
        return guest__fail(err, st, "no random bytes");
    guest_db tx;
    if ((st = guest__tx_begin(ctx, &tx, err)) != GUEST_OK) {
        OPENSSL_cleanse(token, sizeof token);
        return st;
    }
    bool found;
    int64_t uid = 0;
    char username[GUEST_USERNAME_BUF] = "";
    st = guest__store_reset_target(&tx, email, &found, &uid, username, err);
    /* Whether the address is known or not, the same statements run (the
     * link's insert finds no user to copy when there is none), so the
     * answer takes the same time. */
    if (st == GUEST_OK)
        st = guest__store_token_put(&tx, hash, "reset", found ? uid : 0, email,
                                    c->password_reset_timeout, err);
    char *link = NULL;
    if (st == GUEST_OK && found) {
        link = link_to(c, "/accounts/password/reset/", token);
        guest_mail_vars v = {.kind = GUEST_MAIL_PASSWORD_RESET,
                             .username = username,
                             .address = email,
                             .link = link ? link : "",
                             .valid_s = c->password_reset_timeout,
                             .new_address = ""};
        st = link ? queue_mail(&tx, &v, err) : GUEST_ERR_NOMEM;
    } else if (st == GUEST_OK) {
        st = guest__sql_run(ctx, &tx, &(guest__stmt){.sql = "SELECT 1"}, NULL,
                            err);
    }
    if (link) {
        OPENSSL_cleanse(link, strlen(link));
        free(link);
    }
    OPENSSL_cleanse(token, sizeof token);
    if (st == GUEST_OK)
        return guest__tx_commit(&tx, err);
    guest__tx_abort(&tx);
    return st;
}

/* The hash of a link's token; false when it cannot be one of ours. */
static bool token_hash(const char *token, unsigned char hash[32])
{
    return token && guest__session_hash(token, hash);
}

/* Whether a link of @p kind is live, its user's name into @p username. */
static guest_status link_check(guest_ctx *ctx, const char *token,
                               const char *kind, char *username,
                               guest_error *err)
{
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx");
    unsigned char hash[GUEST__SHA256_BYTES];
    if (!token_hash(token, hash))
        return guest__fail(err, GUEST_ERR_NOT_FOUND, "not a link of ours");
    bool found;
    char name[GUEST_USERNAME_BUF];
    guest_status st =
        guest__store_token_peek(ctx, hash, kind, &found, name, err);
    if (st == GUEST_OK && !found)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND,
                         "the link is unknown, used, expired, or the "
                         "password changed since");
    if (st == GUEST_OK && username)
        snprintf(username, GUEST_USERNAME_BUF, "%s", name);
    return st;
}

guest_status guest_password_reset_check(guest_ctx *ctx, const char *token,
                                        char *username, guest_error *err)
{
    return link_check(ctx, token, "reset", username, err);
}

guest_status guest_email_verify_check(guest_ctx *ctx, const char *token,
                                      guest_error *err)
{
    return link_check(ctx, token, "verify", NULL, err);
}

guest_status guest_password_reset_confirm(guest_req *req, const char *token,
                                          const char *new_password1,
                                          const char *new_password2,
                                          guest_form_errors *errors,
                                          guest_error *err)
{
    guest_form_errors local;
    if (!guest__form_call_start(req, &errors, &local, err))
        return GUEST_ERR_INVALID;
    guest_ctx *ctx = req->ctx;
    char username[GUEST_USERNAME_BUF];
    guest_status st = guest_password_reset_check(ctx, token, username, err);
    if (st != GUEST_OK)
        return st;
    bool have1 = new_password1 && *new_password1,
         have2 = new_password2 && *new_password2;
    if (!have1)
        guest_form_errors_add(errors, "new_password1", GUEST__MSG_REQUIRED);
    if (!have2)
        guest_form_errors_add(errors, "new_password2", GUEST__MSG_REQUIRED);
    if (have1 && have2 && strcmp(new_password1, new_password2) != 0)
        guest_form_errors_add(errors, "new_password2",
                              "The two password fields didn't match.");
    else if (have1 && have2) {
        st = guest_password_validate(ctx, username, new_password2,
                                     "new_password2", errors);
        if (st != GUEST_OK && st != GUEST_ERR_VALIDATION)
            return st;
    }
    if (errors->count)
        return GUEST_ERR_VALIDATION;
    char hash[GUEST_PASSWORD_HASH_BUF];
    if ((st = guest__hash_password(ctx, new_password2, hash, sizeof hash)) !=
        GUEST_OK)
        return st;
    unsigned char th[GUEST__SHA256_BYTES];
    token_hash(token, th);
    guest_db tx;
    guest__token_use use = {0};
    st = guest__tx_begin(ctx, &tx, err);
    if (st == GUEST_OK) {
        /* Used up under lock, and only if still live: two confirmations
         * at once set one password. */
        st = guest__store_token_use(&tx, th, "reset", &use, err);
        if (st == GUEST_OK && !use.found)
            st = guest__fail(err, GUEST_ERR_NOT_FOUND,
                             "the link was used or died meanwhile");
        if (st == GUEST_OK)
            st = guest__store_password_reset(&tx, use.user_id, hash, err);
        if (st == GUEST_OK)
            st = guest__tx_commit(&tx, err);
        else
            guest__tx_abort(&tx);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    if (st == GUEST_OK)
        guest__session_cache_drop_user(ctx, use.user_id);
    return st;
}

/* Checks @p password against the user's, in a hashing slot, when the user
 * has one; counted as a login attempt of that name. */
static guest_status check_own_password(guest_req *req, const guest_user *user,
                                       const char *password,
                                       guest_form_errors *errors,
                                       guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    char *stored;
    guest_status st = guest__store_user_password(ctx, user->id, &stored, err);
    if (st != GUEST_OK)
        return st;
    bool usable = guest__password_usable(stored);
    if (usable && (!password || !*password)) {
        guest_form_errors_add(errors, "password", GUEST__MSG_REQUIRED);
        st = GUEST_ERR_VALIDATION;
    } else if (usable) {
        st = guest__limit_login_take(req, user->username, err);
        bool ok = false;
        if (st == GUEST_OK && (st = guest__hash_slot_take(ctx)) == GUEST_OK) {
            ok = guest_password_verify(password, stored);
            guest__hash_slot_give(ctx);
        }
        if (st == GUEST_OK && !ok) {
            guest_form_errors_add(errors, "password", MSG_PASSWORD_WRONG);
            st = GUEST_ERR_VALIDATION;
        }
        if (st != GUEST_ERR_RATE_LIMITED)
            guest__limit_login_done(req, user->username,
                                    st == GUEST_ERR_VALIDATION ? GUEST_ERR_AUTH
                                                               : st);
        else
            guest_form_errors_add(errors, "__all__", GUEST__MSG_LOCKED_OUT);
    }
    OPENSSL_cleanse(stored, strlen(stored));
    free(stored);
    return st;
}

guest_status guest_email_change(guest_req *req, const char *email,
                                const char *password, guest_form_errors *errors,
                                guest_error *err)
{
    guest_form_errors local;
    if (!guest__form_call_start(req, &errors, &local, err))
        return GUEST_ERR_INVALID;
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    guest_status st = guest__email_need_mail(c, err);
    if (st != GUEST_OK)
        return st;
    const guest_user *current;
    if ((st = guest_req_user(req, &current, err)) != GUEST_OK)
        return st;
    if (!current || current->is_guest)
        return guest__fail(err, GUEST_ERR_AUTH,
                           "only a registered user has an address to change");
    guest_user user = *current;
    if (!email || !*email)
        guest_form_errors_add(errors, "email", GUEST__MSG_REQUIRED);
    else if (!guest__email_ok(email))
        guest_form_errors_add(errors, "email", MSG_BAD_EMAIL);
    st = check_own_password(req, &user, password, errors, err);
    if (st != GUEST_OK || errors->count)
        return st != GUEST_OK ? st : GUEST_ERR_VALIDATION;
    guest_db tx;
    if ((st = guest__tx_begin(ctx, &tx, err)) == GUEST_OK) {
        bool taken;
        st = guest__store_email_taken(&tx, email, user.id, &taken, err);
        if (st == GUEST_OK && taken) {
            guest_form_errors_add(errors, "email", MSG_EMAIL_TAKEN);
            st = GUEST_ERR_VALIDATION;
        }
        if (st == GUEST_OK)
            st = guest__email_queue_verify(&tx, user.id, user.username, email,
                                           err);
        if (st == GUEST_OK)
            st = guest__tx_commit(&tx, err);
        else
            guest__tx_abort(&tx);
    }
    return st;
}

guest_status guest__email_queue_verify(guest_db *tx, int64_t user_id,
                                       const char *username, const char *email,
                                       guest_error *err)
{
    const guest_config *c = &tx->ctx->cfg;
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char hash[GUEST__SHA256_BYTES];
    guest_status st = guest__session_new(token, hash);
    if (st != GUEST_OK)
        return guest__fail(err, st, "no random bytes");
    char *link = NULL;
    st = guest__store_token_put(tx, hash, "verify", user_id, email,
                                c->email_verify_timeout, err);
    if (st == GUEST_OK &&
        !(link = link_to(c, "/accounts/email/verify/", token)))
        st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    if (st == GUEST_OK) {
        guest_mail_vars v = {.kind = GUEST_MAIL_VERIFY,
                             .username = username,
                             .address = email,
                             .link = link,
                             .valid_s = c->email_verify_timeout,
                             .new_address = ""};
        st = queue_mail(tx, &v, err);
    }
    if (link) {
        OPENSSL_cleanse(link, strlen(link));
        free(link);
    }
    OPENSSL_cleanse(token, sizeof token);
    return st;
}

guest_status guest_email_verify(guest_ctx *ctx, const char *token,
                                char *email_out, guest_error *err)
{
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx");
    unsigned char hash[GUEST__SHA256_BYTES];
    if (!token_hash(token, hash))
        return guest__fail(err, GUEST_ERR_NOT_FOUND, "not a verification link");
    guest_db tx;
    guest__token_use use = {0};
    guest_status st = guest__tx_begin(ctx, &tx, err);
    if (st != GUEST_OK)
        return st;
    st = guest__store_token_use(&tx, hash, "verify", &use, err);
    if (st == GUEST_OK && !use.found)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND,
                         "the link is unknown, used or expired");
    if (st == GUEST_OK)
        st = guest__store_email_set(&tx, use.user_id, use.email, true, err);
    /* The old verified address hears of the change: if someone else made
     * it, its owner learns in time to act. */
    char old_lower[GUEST_EMAIL_MAX + 1], new_lower[GUEST_EMAIL_MAX + 1];
    lower_ascii(use.old_email, old_lower, sizeof old_lower);
    lower_ascii(use.email, new_lower, sizeof new_lower);
    if (st == GUEST_OK && use.old_verified && *use.old_email &&
        strcmp(old_lower, new_lower) != 0 && ctx->cfg.mail_from) {
        guest_mail_vars v = {.kind = GUEST_MAIL_EMAIL_CHANGED,
                             .username = use.username,
                             .address = use.old_email,
                             .link = "",
                             .valid_s = 0,
                             .new_address = use.email};
        st = queue_mail(&tx, &v, err);
    }
    if (st == GUEST_OK)
        st = guest__tx_commit(&tx, err);
    else
        guest__tx_abort(&tx);
    if (st == GUEST_OK && email_out)
        snprintf(email_out, GUEST_EMAIL_MAX + 1, "%s", use.email);
    return st;
}
