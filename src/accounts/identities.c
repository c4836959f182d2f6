/* Signing in with an identity a provider vouched for: converting the
 * guest, making an account, linking, logging in. (Listing and unlinking
 * identities and the pending flows need only the database:
 * store/identities.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

/* Longest issuer or subject kept (the table's CHECK says the same). */
#define IDENTITY_PART_MAX 255
/* Numbered candidates tried after the plain name (the reference's
 * allauth module appends a number on a clash, too). */
#define NUMBERED_CANDIDATES 20
/* Random-suffixed ones after those, for a very common name. */
#define RANDOM_CANDIDATES 3
/* Room left in a name for a suffix. */
#define BASE_MAX_BYTES 120

/* Who the visitor was when the sign-in began. */
typedef enum visitor_kind { ANONYMOUS, GUEST, REGISTERED } visitor_kind;

static bool part_ok(const char *s)
{
    return s && *s && strlen(s) <= IDENTITY_PART_MAX;
}

/* Django's username characters only (letters and digits of ASCII, and
 * @ . + - _), cut to leave room for a number; "" when nothing is left. */
static void clean_name(const char *src, bool local_part, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)src;
         *p && n + 1 < size && n < BASE_MAX_BYTES; p++) {
        if (local_part && *p == '@')
            break;
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '+' ||
                    *p == '-' || *p == '_' || (!local_part && *p == '@');
        if (keep)
            out[n++] = (char)*p;
    }
    out[n] = '\0';
}

/* The name a new account starts from: preferred_username, else the
 * e-mail's local part, else the name, cleaned; "user" when none gives
 * anything. */
static void base_name(const guest_identity *id, char *out, size_t size)
{
    out[0] = '\0';
    if (id->preferred_username)
        clean_name(id->preferred_username, false, out, size);
    if (!*out && id->email)
        clean_name(id->email, true, out, size);
    if (!*out && id->name)
        clean_name(id->name, false, out, size);
    if (!*out)
        snprintf(out, size, "user");
}

/* The first free name among the base, the base with 2..21 appended, and a
 * few with random digits. */
static guest_status pick_username(guest_db *tx, const guest_identity *id,
                                  char out[GUEST_USERNAME_BUF],
                                  guest_error *err)
{
    char base[BASE_MAX_BYTES + 1];
    base_name(id, base, sizeof base);
    enum { N = 1 + NUMBERED_CANDIDATES + RANDOM_CANDIDATES };
    char names[N][GUEST_USERNAME_BUF];
    const char *list[N];
    snprintf(names[0], sizeof names[0], "%s", base);
    for (int i = 1; i < N; i++) {
        uint64_t r = (uint64_t)i + 1;
        if (i > NUMBERED_CANDIDATES &&
            guest__random_below(1000000, &r) != GUEST_OK)
            return guest__fail(err, GUEST_ERR_CRYPTO, "no random bytes");
        snprintf(names[i], sizeof names[i], "%s%llu", base,
                 (unsigned long long)r);
    }
    for (int i = 0; i < N; i++)
        list[i] = names[i];
    bool found;
    guest_status st = guest__store_free_username(
        tx, list, N, out, GUEST_USERNAME_BUF, &found, err);
    if (st == GUEST_OK && !found)
        st = guest__fail(err, GUEST_ERR_NAME_EXHAUSTED,
                         "every name derived from \"%s\" is taken", base);
    return st;
}

/* Django's unusable password: '!' and random characters, which no
 * password hashes to. */
static guest_status unusable_password(char out[42])
{
    out[0] = '!';
    return guest__random_alnum(out + 1, 40);
}

/* One attempt at the sign-in's transaction; *user is who the visitor
 * becomes. */
static guest_status
sign_in_tx(guest_req *req, guest_db *tx, const guest_identity *id,
           visitor_kind kind, const guest_user *visitor, bool has_old,
           const unsigned char *old_hash, const unsigned char *new_hash,
           guest_identity_outcome *outcome, guest_user *user, guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    bool found, active;
    int64_t owner = 0;
    char owner_name[GUEST_USERNAME_BUF] = "";
    guest_status st =
        guest__store_identity_owner(ctx, tx, id->issuer, id->subject, &found,
                                    &owner, &active, owner_name, err);
    if (st != GUEST_OK)
        return st;
    memset(user, 0, sizeof *user);
    if (found) {
        if (!active)
            return guest__fail(err, GUEST_ERR_AUTH,
                               "the identity's account is deactivated");
        if (kind == REGISTERED && visitor->id != owner)
            return guest__fail(err, GUEST_ERR_IDENTITY_TAKEN,
                               "the identity belongs to another account");
        user->id = owner;
        snprintf(user->username, sizeof user->username, "%s", owner_name);
        *outcome = GUEST_IDENTITY_LOGGED_IN;
        if (kind == GUEST)
            st = guest__absorb_guest(req, tx, visitor, user, err);
        if (st == GUEST_OK)
            st = guest__store_identity_used(tx, id, err);
        if (st == GUEST_OK && kind != REGISTERED)
            st = guest__store_session_replace(tx, owner,
                                              has_old ? old_hash : NULL, false,
                                              new_hash, ctx->cfg.max_age, err);
        return st;
    }
    if (kind == REGISTERED) {
        *user = *visitor;
        *outcome = GUEST_IDENTITY_LINKED;
        return guest__store_identity_link(tx, visitor->id, id, err);
    }
    if (kind == ANONYMOUS && !ctx->cfg.identity_signup)
        return guest__fail(err, GUEST_ERR_SIGNUP_CLOSED,
                           "identity_signup is off");
    char password[42];
    if (unusable_password(password) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "no random bytes");
    st = pick_username(tx, id, user->username, err);
    if (st == GUEST_OK && kind == GUEST) {
        user->id = visitor->id;
        *outcome = GUEST_IDENTITY_CONVERTED;
        st = guest__store_guest_register(tx, user->id, user->username, password,
                                         err);
    } else if (st == GUEST_OK) {
        *outcome = GUEST_IDENTITY_SIGNED_UP;
        st = guest__store_user_insert(tx, user->username, password, &user->id,
                                      err);
    }
    OPENSSL_cleanse(password, sizeof password);
    if (st == GUEST_OK)
        st = guest__store_identity_link(tx, user->id, id, err);
    /* A converted guest's other sessions end too, as in guest_convert():
     * a token copied before must not reach the account. */
    if (st == GUEST_OK)
        st = guest__store_session_replace(
            tx, user->id, has_old ? old_hash : NULL, kind == GUEST, new_hash,
            ctx->cfg.max_age, err);
    return st;
}

static guest_status check_identity(const guest_identity *id, guest_error *err)
{
    if (!id || !part_ok(id->issuer) || !part_ok(id->subject))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "an identity needs an issuer and a subject of "
                           "1..%d bytes",
                           IDENTITY_PART_MAX);
    if (!guest__utf8_valid(id->issuer, strlen(id->issuer)) ||
        !guest__utf8_valid(id->subject, strlen(id->subject)) ||
        (id->email && !guest__utf8_valid(id->email, strlen(id->email))))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "an identity's text is not UTF-8");
    return GUEST_OK;
}

/* After the commit: the request's user, its cookie, the CSRF secret, the
 * caches of the sessions that ended, and the hooks. */
static void after_commit(guest_req *req, guest_identity_outcome outcome,
                         visitor_kind kind, const guest_user *visitor,
                         bool has_old, const unsigned char *old_hash,
                         const guest_user *user, const char *token,
                         const guest_identity *id)
{
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    if (has_old && outcome != GUEST_IDENTITY_LINKED)
        guest__session_cache_drop_token(ctx, old_hash);
    if (kind == GUEST)
        guest__session_cache_drop_user(ctx, visitor->id);
    if (outcome != GUEST_IDENTITY_LINKED &&
        !(outcome == GUEST_IDENTITY_LOGGED_IN && kind == REGISTERED)) {
        guest__req_set_user(req, user);
        /* The rows are committed: a failing header cannot undo them, and
         * the visitor's next request would merely find no session. */
        if (guest__set_session_cookie(req, token) != GUEST_OK)
            guest__log(ctx, GUEST_LOG_WARNING,
                       "an identity sign-in was committed but its session "
                       "cookie could not be set");
        if (guest__csrf_rotate(req) != GUEST_OK)
            guest__log(ctx, GUEST_LOG_WARNING,
                       "could not renew the CSRF secret after a sign-in");
    }
    if (outcome == GUEST_IDENTITY_CONVERTED) {
        guest__count(ctx, GUEST__C_CONVERSIONS);
        if (c->on_converted)
            c->on_converted(&req->user, c->on_converted_userdata);
    }
    if (outcome != GUEST_IDENTITY_LOGGED_IN && c->on_identity_linked)
        c->on_identity_linked(user, id, c->on_identity_linked_userdata);
}

guest_status guest_identity_sign_in(guest_req *req,
                                    const guest_identity *identity,
                                    guest_identity_outcome *outcome,
                                    guest_error *err)
{
    if (!req)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL request");
    guest_status st = check_identity(identity, err);
    if (st != GUEST_OK)
        return st;
    guest_ctx *ctx = req->ctx;
    const guest_user *current;
    st = guest_req_user(req, &current, err);
    if (st != GUEST_OK)
        return st;
    guest_user visitor = {0};
    visitor_kind kind = ANONYMOUS;
    if (current) {
        visitor = *current;
        kind = current->is_guest ? GUEST : REGISTERED;
    }
    unsigned char old_hash[GUEST__SHA256_BYTES], new_hash[GUEST__SHA256_BYTES];
    char token[GUEST__TOKEN_CHARS + 1];
    bool has_old = guest__req_session_hash(req, old_hash);
    st = guest__session_new(token, new_hash);
    guest_identity_outcome done = GUEST_IDENTITY_LOGGED_IN;
    guest_user user = {0};
    /* A concurrent sign-in may link the same identity, or take the chosen
     * name, between the look-up and the write: the second attempt then
     * finds the link, or another name. */
    for (int attempt = 0; st == GUEST_OK && attempt < 3; attempt++) {
        guest_db tx;
        st = guest__tx_begin(ctx, &tx, err);
        if (st != GUEST_OK)
            break;
        st = sign_in_tx(req, &tx, identity, kind, &visitor, has_old, old_hash,
                        new_hash, &done, &user, err);
        if (st == GUEST_OK) {
            st = guest__tx_commit(&tx, err);
            break;
        }
        guest__tx_abort(&tx);
        bool race = st == GUEST_ERR_USERNAME_TAKEN ||
                    (st == GUEST_ERR_IDENTITY_TAKEN && kind != REGISTERED);
        if (!race)
            break;
        st = GUEST_OK;
        if (attempt == 2)
            st = guest__fail(err, GUEST_ERR_DB,
                             "the sign-in lost three races in a row");
    }
    if (st == GUEST_OK)
        after_commit(req, done, kind, &visitor, has_old, old_hash, &user, token,
                     identity);
    else if (st == GUEST_ERR_NOT_GUEST && kind == GUEST) {
        /* Converted by another request: this one's view was stale. */
        guest__session_cache_drop_user(ctx, visitor.id);
        guest__req_forget_user(req);
    }
    OPENSSL_cleanse(token, sizeof token);
    if (st == GUEST_OK && outcome)
        *outcome = done;
    return st;
}
