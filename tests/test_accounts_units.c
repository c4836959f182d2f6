/* Accounts pieces that need no database: Django password hashes, username
 * and password validators, form parsing, safe redirect targets, CSRF. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts.h"
#include "testlib.h"

/* ---- password hashes ---- */

/* Expected strings computed with Python's hashlib.pbkdf2_hmac('sha256',
 * password, salt, iterations, 32), base64-encoded: exactly what Django's
 * PBKDF2PasswordHasher.encode() returns for these inputs. The last one is
 * the vector of Django 5.2's own test suite (test_hashers.py). */
static const struct {
    const char *password, *salt;
    unsigned iterations;
    const char *encoded;
} vectors[] = {
    {"correct horse battery staple", "seasalt0123456789abcd", 1000,
     "pbkdf2_sha256$1000$seasalt0123456789abcd$"
     "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4="},
    {"hunter2!", "YfOtVnHxZS1o9yP4kTqL2a", 870000,
     "pbkdf2_sha256$870000$YfOtVnHxZS1o9yP4kTqL2a$"
     "sgidAvIggwKesZa6JmschhqE4Vxb60bV9CLLIrjl3eA="},
    {"p\xc3\xa4ssw\xc3\xb6rd \xe2\x9c\x93", "abcDEF123xyz", 1,
     "pbkdf2_sha256$1$abcDEF123xyz$"
     "8cbKEmRQbwg2SskBKMMO2gTvjzSFHa1uxlJJd40ZJqg="},
    {"x", "s", 1,
     "pbkdf2_sha256$1$s$Iw9uUpJ8wkEJJjGR3rcONsswOtuGX7TZe8GsNaKCO3I="},
    {"l\xc3\xa8tmein", "seasalt", 1000000,
     "pbkdf2_sha256$1000000$seasalt$"
     "r1uLUxoxpP2Ued/qxvmje7UH9PUJBkRrvf9gGPL7Cps="},
};
#define NVECTORS (sizeof vectors / sizeof *vectors)

START_TEST(hash_matches_django_vectors)
{
    /* our encoder gives Django's string */
    char out[GUEST_PASSWORD_HASH_BUF];
    ck_assert_int_eq(
        guest__password_hash_salt(vectors[_i].password, vectors[_i].salt,
                                  vectors[_i].iterations, out, sizeof out),
        GUEST_OK);
    ck_assert_str_eq(out, vectors[_i].encoded);
}
END_TEST

START_TEST(django_hashes_verify)
{
    /* Django's string verifies here; a one-character change does not */
    ck_assert(guest_password_verify(vectors[_i].password, vectors[_i].encoded));
    ck_assert(!guest_password_verify("wrong", vectors[_i].encoded));
    char tampered[GUEST_PASSWORD_HASH_BUF];
    strcpy(tampered, vectors[_i].encoded);
    size_t n = strlen(tampered);
    tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
    ck_assert(!guest_password_verify(vectors[_i].password, tampered));
}
END_TEST

START_TEST(hash_has_random_salt_and_config_iterations)
{
    char a[GUEST_PASSWORD_HASH_BUF], b[GUEST_PASSWORD_HASH_BUF];
    ck_assert_int_eq(
        guest_password_hash("Quartz-Lantern-58", 1234, a, sizeof a), GUEST_OK);
    ck_assert_int_eq(
        guest_password_hash("Quartz-Lantern-58", 1234, b, sizeof b), GUEST_OK);
    ck_assert_str_ne(a, b);
    ck_assert(!strncmp(a, "pbkdf2_sha256$1234$", 19));
    const char *salt = a + 19;
    const char *end = strchr(salt, '$');
    ck_assert_ptr_nonnull(end);
    ck_assert_int_eq(end - salt, 22);
    ck_assert_uint_eq(strspn(salt, GUEST__ALNUM), 22);
    ck_assert_uint_eq(strlen(end + 1), 44); /* padded base64 of 32 bytes */
    ck_assert(guest_password_verify("Quartz-Lantern-58", a));
    ck_assert(guest_password_verify("Quartz-Lantern-58", b));
    unsigned it;
    ck_assert(guest__password_iterations(a, &it));
    ck_assert_uint_eq(it, 1234);
}
END_TEST

START_TEST(hash_refuses_bad_input)
{
    char out[GUEST_PASSWORD_HASH_BUF];
    ck_assert_int_eq(guest_password_hash("", 1000, out, sizeof out),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_password_hash(NULL, 1000, out, sizeof out),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_password_hash("abc", 0, out, sizeof out),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_password_hash("abc", 1000, out, 20),
                     GUEST_ERR_INVALID);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(
        guest__password_hash_salt("abc", "a$b", 1, out, sizeof out),
        GUEST_ERR_INVALID);
}
END_TEST

START_TEST(verify_refuses_unusable_and_malformed)
{
    const char *pw = "correct horse battery staple";
    const char *bad[] = {
        "",
        "!",
        "!pbkdf2_sha256$1000$seasalt0123456789abcd$"
        "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "pbkdf2_sha1$1000$seasalt0123456789abcd$"
        "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "PBKDF2_SHA256$1000$seasalt0123456789abcd$"
        "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "pbkdf2_sha256$01000$seasalt0123456789abcd$"
        "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "pbkdf2_sha256$+1000$seasalt0123456789abcd$"
        "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "pbkdf2_sha256$0$seasalt0123456789abcd$x",
        "pbkdf2_sha256$99999999999$seasalt$x",
        "pbkdf2_sha256$1000$$DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=",
        "pbkdf2_sha256$1000$seasalt0123456789abcd$",
        "pbkdf2_sha256$1000$seasalt0123456789abcd",
        "pbkdf2_sha256$1000",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!guest_password_verify(pw, bad[i]), "accepted %s",
                      bad[i]);
    ck_assert(!guest_password_verify(pw, NULL));
    /* an empty password never logs in, even against a hash of "" */
    ck_assert(!guest_password_verify("", vectors[0].encoded));
    ck_assert(!guest_password_verify(NULL, vectors[0].encoded));
}
END_TEST

/* ---- username and password validators ---- */

static guest_ctx fake_ctx;
static guest__core fake_core;

static void fake_setup(void)
{
    memset(&fake_ctx, 0, sizeof fake_ctx);
    memset(&fake_core, 0, sizeof fake_core);
    fake_ctx.core = &fake_core;
    guest_config_init(&fake_ctx.cfg);
    fake_ctx.cfg.password_iterations = 1000;
}

static const char *only_message(const guest_form_errors *e, const char *field)
{
    ck_assert_uint_eq(e->count, 1);
    ck_assert_str_eq(e->items[0].field, field);
    return e->items[0].message;
}

START_TEST(username_rules)
{
    const char *good[] = {"a",
                          "alice",
                          "Al.ice+tag@ex-ample_1",
                          "J\xc3\xbcrgen",
                          "\xe4\xb8\xad\xe6\x96\x87",
                          NULL};
    for (const char *const *g = good; *g; g++) {
        guest_form_errors e = {0};
        ck_assert_msg(guest_username_validate(*g, &e) == GUEST_OK, "%s", *g);
        ck_assert_uint_eq(e.count, 0);
    }
    const char *invalid =
        "Enter a valid username. This value may contain only letters, "
        "numbers, and @/./+/-/_ characters.";
    const char *bad[] = {"with space",
                         "semi;colon",
                         "tab\there",
                         "new\nline",
                         "quote\"",
                         "slash/",
                         "<script>",
                         "bad\xff"
                         "utf8",
                         "nbsp\xc2\xa0x",
                         "zw\xe2\x80\x8bsp",
                         NULL};
    for (const char *const *b = bad; *b; b++) {
        guest_form_errors e = {0};
        ck_assert_int_eq(guest_username_validate(*b, &e), GUEST_ERR_VALIDATION);
        ck_assert_str_eq(only_message(&e, "username"), invalid);
    }
    guest_form_errors e = {0};
    ck_assert_int_eq(guest_username_validate("", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "username"), "This field is required.");
    e.count = 0;
    ck_assert_int_eq(guest_username_validate(NULL, &e), GUEST_ERR_VALIDATION);

    char name[200];
    memset(name, 'a', 150);
    name[150] = '\0';
    e.count = 0;
    ck_assert_int_eq(guest_username_validate(name, &e), GUEST_OK);
    strcat(name, "b");
    ck_assert_int_eq(guest_username_validate(name, &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "username"),
                     "Ensure this value has at most 150 characters (it has "
                     "151).");
    /* 150 two-byte characters are 150 characters, not 300 */
    char wide[400] = "";
    for (int i = 0; i < 150; i++)
        strcat(wide, "\xc3\xa9");
    e.count = 0;
    ck_assert_int_eq(guest_username_validate(wide, &e), GUEST_OK);
}
END_TEST

static guest_status validate(const char *user, const char *pw,
                             guest_form_errors *e)
{
    memset(e, 0, sizeof *e);
    return guest_password_validate(&fake_ctx, user, pw, "password2", e);
}

START_TEST(password_validators_give_django_messages)
{
    guest_form_errors e;
    ck_assert_int_eq(validate("alice", "Quartz-Lantern-58", &e), GUEST_OK);
    ck_assert_uint_eq(e.count, 0);

    ck_assert_int_eq(validate("alice", "Qz-7", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&e, "password2"),
                     "This password is too short. It must contain at least "
                     "8 characters.");

    ck_assert_int_eq(validate("alice", "90817263544", &e),
                     GUEST_ERR_VALIDATION);
    bool numeric = false;
    for (size_t i = 0; i < e.count; i++)
        numeric |=
            !strcmp(e.items[i].message, "This password is entirely numeric.");
    ck_assert(numeric);

    ck_assert_int_eq(validate("bob", "password", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is too common.");
    ck_assert_int_eq(validate("bob", "letmein123", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is too common.");

    /* similarity: the whole name, and a part of it */
    ck_assert_int_eq(validate("margaretha", "Margaretha1", &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(e.items[0].message,
                     "The password is too similar to the username.");
    ck_assert_int_eq(validate("j.vanderbilt@example.org", "Vanderbilt!9", &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(e.items[0].message,
                     "The password is too similar to the username.");
    /* a short part far shorter than the password does not count */
    ck_assert_int_eq(validate("al", "al-Quartz-Lantern-58-xyz", &e), GUEST_OK);
    /* no username: no similarity check */
    ck_assert_int_eq(validate(NULL, "Margaretha1xx", &e), GUEST_OK);
}
END_TEST

static const char *no_q(const char *username, const char *password, void *ud)
{
    (void)username;
    *(int *)ud += 1;
    return strchr(password, 'Q') ? "No capital Q, please." : NULL;
}

START_TEST(utf8_is_decoded_strictly)
{
    /* four-byte sequences count as one character */
    ck_assert_uint_eq(guest__utf8_chars("a\xf0\x9f\x98\x80z"), 3);
    ck_assert(guest__utf8_valid("\xf0\xa0\x80\x80", 4));
    /* a lead byte without its continuation, an overlong form, a
     * surrogate, a value past U+10FFFF: each byte counts on its own */
    ck_assert(!guest__utf8_valid("\xc3(", 2));
    ck_assert_uint_eq(guest__utf8_chars("\xc3("), 2);
    ck_assert(!guest__utf8_valid("\xc0\xaf", 2));
    ck_assert(!guest__utf8_valid("\xed\xa0\x80", 3));
    ck_assert(!guest__utf8_valid("\xf4\x90\x80\x80", 4));
    ck_assert(!guest__utf8_valid("\xf8\x88\x80\x80\x80", 5));
    /* a sequence cut by the buffer's end */
    ck_assert(!guest__utf8_valid("\xe4\xb8\xad", 2));
    /* a four-byte letter is a word character in a username, an emoji is
     * not */
    guest_form_errors e = {0};
    ck_assert_int_eq(guest_username_validate("li\xf0\xa0\x80\x80", &e),
                     GUEST_OK);
    ck_assert_int_eq(guest_username_validate("smile\xf0\x9f\x98\x80", &e),
                     GUEST_ERR_VALIDATION);
}
END_TEST

START_TEST(similarity_lowers_beyond_ascii_and_skips_empty_parts)
{
    guest_form_errors e;
    fake_ctx.cfg.password_checks = GUEST_PW_CHECK_SIMILARITY;
    /* Django lowers both with str.lower(): \xc3\x9c (U+00DC) matches
     * \xc3\xbc (U+00FC) */
    ck_assert_int_eq(validate("m\xc3\xbcllerstra\xc3\x9f"
                              "e",
                              "M\xc3\x9cLLERSTRA\xc3\x9f"
                              "E",
                              &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "The password is too similar to the username.");
    /* two separators in a row leave an empty part, which matches nothing;
     * the parts around it still do */
    ck_assert_int_eq(validate("anna..kowalczyk", "Kowalczyk-7", &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_int_eq(validate("anna..kowalczyk", "Quartz-Lantern-58", &e),
                     GUEST_OK);
    /* a malformed byte in the password stands for itself and matches no
     * letter of the name */
    ck_assert_int_eq(validate("zebra", "\xff\xfe\xfd\xfc\xfb", &e), GUEST_OK);
    ck_assert_int_eq(validate("zebra", "zebr\xff", &e), GUEST_ERR_VALIDATION);
}
END_TEST

START_TEST(palindromes_are_common)
{
    guest_form_errors e;
    fake_ctx.cfg.password_checks = GUEST_PW_CHECK_COMMON;
    ck_assert_int_eq(validate("bob", "Zq9-Lantern-nretnaL-9qZ", &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is too common.");
    ck_assert_int_eq(validate("bob", "Zq9-Lantern-nretnaL-9qY", &e), GUEST_OK);
}
END_TEST

START_TEST(password_checks_are_configurable)
{
    guest_form_errors e;
    fake_ctx.cfg.password_checks = 0;
    ck_assert_int_eq(validate("bob", "password", &e), GUEST_OK);
    ck_assert_int_eq(validate("bob", "1", &e), GUEST_OK);
    fake_ctx.cfg.password_checks = GUEST_PW_CHECK_MIN_LENGTH;
    fake_ctx.cfg.password_min_length = 12;
    ck_assert_int_eq(validate("bob", "password", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is too short. It must contain at least "
                     "12 characters.");
    fake_ctx.cfg.password_min_length = 1;
    ck_assert_int_eq(validate("bob", "", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is too short. It must contain at least "
                     "1 character.");
    /* the length counts characters, not bytes */
    fake_ctx.cfg.password_min_length = 8;
    ck_assert_int_eq(validate("bob", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", &e),
                     GUEST_ERR_VALIDATION);
    fake_ctx.cfg.password_checks = GUEST_PW_CHECK_NUMERIC;
    ck_assert_int_eq(validate("bob", "0123", &e), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"),
                     "This password is entirely numeric.");
    int calls = 0;
    fake_ctx.cfg.password_checks = GUEST_PW_CHECK_ALL;
    fake_ctx.cfg.password_check = no_q;
    fake_ctx.cfg.password_check_userdata = &calls;
    ck_assert_int_eq(validate("bob", "Quartz-Lantern-58", &e),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(only_message(&e, "password2"), "No capital Q, please.");
    ck_assert_int_eq(validate("bob", "zebra-Lantern-58", &e), GUEST_OK);
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(guest_password_validate(NULL, "a", "b", "p", &e),
                     GUEST_ERR_INVALID);
}
END_TEST

START_TEST(form_errors_truncate_on_character_boundary)
{
    guest_form_errors e = {0};
    char msg[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(msg, "\xc3\xa9"); /* 200 bytes */
    guest_form_errors_add(&e, "x", msg);
    ck_assert_uint_eq(strlen(e.items[0].message), 198);
    ck_assert_ptr_null(guest_form_errors_get(NULL, "x"));
    ck_assert_ptr_null(guest_form_errors_get(&e, NULL));
    for (int i = 0; i < 40; i++)
        guest_form_errors_add(&e, "y", "again");
    ck_assert_uint_eq(e.count, 16);
    ck_assert_str_eq(guest_form_errors_get(&e, "y"), "again");
    ck_assert_ptr_null(guest_form_errors_get(&e, "z"));
    guest_form_errors_add(NULL, "x", "no crash");
}
END_TEST

START_TEST(hash_into_small_buffer_leaves_nothing)
{
    /* Room for all but the end of the hash: no cut-off part of it may stay
     * in the caller's buffer. */
    char out[60];
    memset(out, 'X', sizeof out);
    ck_assert_int_eq(
        guest__password_hash_salt("secret", "salt", 1, out, sizeof out),
        GUEST_ERR_INVALID);
    for (size_t i = 0; i < sizeof out; i++)
        ck_assert_int_eq(out[i], 0);
}
END_TEST

/* ---- forms ---- */

START_TEST(percent_decoding)
{
    char out[32];
    const char in[] = "a+b%41%4a%zz%4%";
    /* form values: '+' is a space */
    ck_assert_uint_eq(guest__percent_decode(in, strlen(in), out, true), 11);
    ck_assert_str_eq(out, "a bAJ%zz%4%");
    /* URLs: '+' stays */
    ck_assert_uint_eq(guest__percent_decode(in, strlen(in), out, false), 11);
    ck_assert_str_eq(out, "a+bAJ%zz%4%");
    /* only n bytes are read, and %00 decodes to a NUL inside the result */
    ck_assert_uint_eq(guest__percent_decode("%2F%00x%41", 7, out, false), 3);
    ck_assert_int_eq(memcmp(out, "/\0x", 4), 0);
    ck_assert_uint_eq(guest__percent_decode("%41", 2, out, false), 2);
    ck_assert_str_eq(out, "%4");
    ck_assert_uint_eq(guest__percent_decode("", 0, out, true), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(guest__hex_value('f'), 15);
    ck_assert_int_eq(guest__hex_value('F'), 15);
    ck_assert_int_eq(guest__hex_value('9'), 9);
    ck_assert_int_eq(guest__hex_value('g'), -1);
}
END_TEST

/* What a handler answers for each outcome of guest_req_form(). */
START_TEST(form_statuses_map_to_http)
{
    ck_assert_int_eq(guest_req_form_http_status(GUEST_OK), 200);
    ck_assert_int_eq(guest_req_form_http_status(GUEST_ERR_TOO_LARGE), 413);
    ck_assert_int_eq(guest_req_form_http_status(GUEST_ERR_INVALID), 415);
    ck_assert_int_eq(guest_req_form_http_status(GUEST_ERR_VALIDATION), 400);
    ck_assert_int_eq(guest_req_form_http_status(GUEST_ERR_DB), 500);
    ck_assert_int_eq(guest_req_form_http_status(GUEST_ERR_NOMEM), 500);
    ck_assert_int_eq(guest_req_form_http_status((guest_status)999), 500);
}
END_TEST

START_TEST(media_types)
{
    const char *json[] = {"application/json",
                          "Application/JSON",
                          " \tapplication/json",
                          "application/json;charset=x",
                          "application/json ; charset=x",
                          NULL};
    for (const char *const *t = json; *t; t++)
        ck_assert_msg(guest__media_type_is(*t, "application/json"), "%s", *t);
    const char *other[] = {"application/jsonp",  "application/jso",
                           "text/json",          "",
                           "x application/json", NULL};
    for (const char *const *t = other; *t; t++)
        ck_assert_msg(!guest__media_type_is(*t, "application/json"), "%s", *t);
    ck_assert(!guest__media_type_is(NULL, "application/json"));
}
END_TEST

START_TEST(urlencoded_forms)
{
    const char body[] = "username=al+ice&password1=p%40ss%2Bw%C3%B6rd&empty=&"
                        "flag&&bad=%zz%4&next=%2Fa%00b";
    guest_form *f = NULL;
    ck_assert_int_eq(guest_form_parse(body, strlen(body), &f, NULL), GUEST_OK);
    ck_assert_str_eq(guest_form_get(f, "username"), "al ice");
    ck_assert_str_eq(guest_form_get(f, "password1"), "p@ss+w\xc3\xb6rd");
    ck_assert_str_eq(guest_form_get(f, "empty"), "");
    ck_assert_str_eq(guest_form_get(f, "flag"), "");
    ck_assert_str_eq(guest_form_get(f, "bad"), "%zz%4");
    size_t len;
    ck_assert_str_eq(guest_form_get_len(f, "next", &len), "/a");
    ck_assert_uint_eq(len, 4);
    ck_assert_ptr_null(guest_form_get(f, "missing"));
    ck_assert_uint_eq(guest_form_count(f), 6);
    guest_form_free(f);

    /* a name that decodes to a NUL byte is refused, not cut short */
    ck_assert_int_eq(guest_form_parse("token%00x=1", 11, &f, NULL),
                     GUEST_ERR_VALIDATION);
    ck_assert_ptr_null(f);
    /* only the given length is read */
    ck_assert_int_eq(guest_form_parse("a=1&b=2", 3, &f, NULL), GUEST_OK);
    ck_assert_uint_eq(guest_form_count(f), 1);
    guest_form_free(f);
    ck_assert_int_eq(guest_form_parse(NULL, 0, &f, NULL), GUEST_OK);
    ck_assert_uint_eq(guest_form_count(f), 0);
    guest_form_free(f);
    guest_form_free(NULL);
}
END_TEST

START_TEST(duplicate_and_excess_fields_are_refused)
{
    const char *dups[] = {"a=1&a=2", "a=1&b=2&a=1", "a&a", "a%3d=1&a%3D=2",
                          "x=1&csrfmiddlewaretoken=a&csrfmiddlewaretoken=a"};
    for (size_t i = 0; i < sizeof dups / sizeof *dups; i++) {
        guest_form *f = (guest_form *)1;
        guest_error err = {0};
        ck_assert_int_eq(guest_form_parse(dups[i], strlen(dups[i]), &f, &err),
                         GUEST_ERR_VALIDATION);
        ck_assert_ptr_null(f);
        ck_assert_ptr_nonnull(strstr(err.message, "more than once"));
    }
    char many[GUEST_FORM_MAX_FIELDS * 8 + 64] = "";
    for (int i = 0; i <= GUEST_FORM_MAX_FIELDS; i++)
        sprintf(many + strlen(many), "f%d=&", i);
    guest_form *f;
    ck_assert_int_eq(guest_form_parse(many, strlen(many), &f, NULL),
                     GUEST_ERR_VALIDATION);
}
END_TEST

START_TEST(json_forms)
{
    const char *body = "{\"username\": \"al\\u00e9\", \"accept\": true, "
                       "\"no\": false, \"none\": null, \"n\": 42, "
                       "\"r\": 1.5}";
    guest_form *f = NULL;
    ck_assert_int_eq(guest_form_parse_json(body, strlen(body), &f, NULL),
                     GUEST_OK);
    ck_assert_str_eq(guest_form_get(f, "username"), "al\xc3\xa9");
    ck_assert_str_eq(guest_form_get(f, "accept"), "on");
    ck_assert_ptr_null(guest_form_get(f, "no"));
    ck_assert_ptr_null(guest_form_get(f, "none"));
    ck_assert_str_eq(guest_form_get(f, "n"), "42");
    ck_assert_str_eq(guest_form_get(f, "r"), "1.5");
    guest_form_free(f);
    const char *bad[] = {"{\"a\": 1, \"a\": 2}",
                         "{\"a\": [1]}",
                         "{\"a\": {\"b\": 1}}",
                         "[1, 2]",
                         "\"str\"",
                         "{",
                         "",
                         "{\"a\": \"x\\u0000y\"}",
                         "{} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = (guest_form *)1;
        ck_assert_msg(guest_form_parse_json(bad[i], strlen(bad[i]), &f, NULL) ==
                          GUEST_ERR_VALIDATION,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(f);
    }
}
END_TEST

/* guest_form_parse_json on a thread with a small stack, as a server's
 * worker thread: a parser that recursed once per nesting level would
 * crash the test instead of failing it. */
typedef struct small_stack_parse {
    const char *body;
    size_t len;
    guest_status st;
    size_t count;
    guest_error err;
} small_stack_parse;

static void *parse_json_thread(void *arg)
{
    small_stack_parse *p = arg;
    guest_form *f = NULL;
    p->st = guest_form_parse_json(p->body, p->len, &f, &p->err);
    p->count = guest_form_count(f);
    guest_form_free(f);
    return NULL;
}

static small_stack_parse parse_on_small_stack(const char *body, size_t len)
{
    small_stack_parse p = {.body = body, .len = len};
    pthread_attr_t attr;
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &attr, parse_json_thread, &p), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    return p;
}

/* @p head, @p unit repeated @p n times, then @p tail; caller frees. */
static char *repeat(const char *head, const char *unit, size_t n,
                    const char *tail)
{
    size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
    char *s = malloc(h + u * n + t + 1), *o = s;
    ck_assert_ptr_nonnull(s);
    memcpy(o, head, h);
    o += h;
    for (size_t i = 0; i < n; i++, o += u)
        memcpy(o, unit, u);
    memcpy(o, tail, t + 1);
    return s;
}

START_TEST(json_forms_refuse_nesting_without_recursion)
{
    enum { DEEP = 100000 };
    char *deep[] = {repeat("", "[", DEEP, ""), repeat("", "{", DEEP, ""),
                    repeat("", "{\"a\":", DEEP, "1"),
                    repeat("", "[", DEEP, "]"),
                    repeat("", "{\"a\":[", DEEP / 2, "")};
    for (size_t i = 0; i < sizeof deep / sizeof *deep; i++) {
        small_stack_parse p = parse_on_small_stack(deep[i], strlen(deep[i]));
        ck_assert_int_eq(p.st, GUEST_ERR_VALIDATION);
        ck_assert_ptr_nonnull(strstr(p.err.message, "nests"));
        free(deep[i]);
    }
    const char *nested[] = {"{\"a\":{\"b\":1}}",
                            "{\"a\": [1]}",
                            "[[1]]",
                            "[{}]",
                            "{\"a\":\"x\\\\\", \"b\": [2]}",
                            "{\"a\\\"\": {}}",
                            " \t\r\n{ \"a\" : {} }"};
    for (size_t i = 0; i < sizeof nested / sizeof *nested; i++) {
        small_stack_parse p =
            parse_on_small_stack(nested[i], strlen(nested[i]));
        ck_assert_msg(p.st == GUEST_ERR_VALIDATION &&
                          strstr(p.err.message, "nests"),
                      "%s: %s", nested[i], p.err.message);
    }
    /* Brackets inside strings are text, escaped quotes included. */
    const char *flat = "{\"a\": \"[[[{{{\", \"b\\\"[\": \"\\\"]]]}}}\\\\\", "
                       "\"c\": \"\\u005b\"}";
    small_stack_parse p = parse_on_small_stack(flat, strlen(flat));
    ck_assert_int_eq(p.st, GUEST_OK);
    ck_assert_uint_eq(p.count, 3);
    /* Malformed text is still reported as such, unterminated strings too. */
    const char *broken[] = {"{\"a\": \"[[[", "{\"a\": \"x\\", "{\"a\"",
                            "}}}]]]"};
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        p = parse_on_small_stack(broken[i], strlen(broken[i]));
        ck_assert_int_eq(p.st, GUEST_ERR_VALIDATION);
    }
}
END_TEST

START_TEST(json_forms_refuse_too_many_fields_before_parsing)
{
    char body[GUEST_FORM_MAX_FIELDS * 16 + 16];
    size_t n = 0;
    body[n++] = '{';
    for (int i = 0; i < GUEST_FORM_MAX_FIELDS; i++)
        n += (size_t)sprintf(body + n, "%s\"f%d\": %d", i ? ", " : "", i, i);
    strcpy(body + n, "}");
    small_stack_parse p = parse_on_small_stack(body, strlen(body));
    ck_assert_int_eq(p.st, GUEST_OK);
    ck_assert_uint_eq(p.count, GUEST_FORM_MAX_FIELDS);
    strcpy(body + n, ", \"one-more\": null}");
    p = parse_on_small_stack(body, strlen(body));
    ck_assert_int_eq(p.st, GUEST_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(p.err.message, "form fields"));
    /* 100,000 empty members in a small body, the same. */
    char *many = repeat("{", "\"\":0,", 100000, "\"\":0}");
    p = parse_on_small_stack(many, strlen(many));
    ck_assert_int_eq(p.st, GUEST_ERR_VALIDATION);
    free(many);
}
END_TEST

/* ---- safe redirect targets ---- */

START_TEST(safe_urls)
{
    const char *host = "testserver";
    const char *safe[] = {"/",
                          "/profile/",
                          "/a/b?c=d&e=f#g",
                          "relative/path",
                          "?next=1",
                          "#top",
                          "/caf\xc3\xa9/",
                          "http://testserver/x",
                          "https://testserver",
                          "HTTPS://TESTSERVER/ok",
                          "/path%20with%20space",
                          "/a b",
                          NULL};
    for (const char *const *s = safe; *s; s++)
        ck_assert_msg(guest_is_safe_url(*s, host, false), "refused %s", *s);
    ck_assert(guest_is_safe_url("https://testserver:8443/x", "testserver:8443",
                                true));
}
END_TEST

START_TEST(unsafe_urls)
{
    const char *host = "testserver";
    const char *unsafe[] = {
        "//evil.com",
        "///evil.com",
        "//testserver",
        "/\\evil.com",
        "\\\\evil.com",
        "\\/evil.com",
        "/\\/evil.com",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java%73cript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "http://evil.com",
        "https://evil.com/",
        "http://evil.com/testserver",
        "http://testserver.evil.com/",
        "http://testserver@evil.com/",
        "http://evil.com@testserver/",
        "https://testserver:444/",
        "http:evil.com",
        "https:/evil.com",
        "http:///evil.com",
        "ftp://testserver/",
        "/path\r\nSet-Cookie: x=1",
        "/path\rx",
        "/path\nx",
        "\n/path",
        "/path\tx",
        "\t//evil.com",
        "/pa\x7fth",
        "/c1\xc2\x85next",
        "/%0d%0aSet-Cookie:x=1",
        "/%0D%0ALocation:%20http://evil.com",
        "/%09",
        "/a%00b",
        "%2F%2Fevil.com",
        "/%2Fevil.com",
        "/%5Cevil.com",
        "%5C%5Cevil.com",
        " /leading-space",
        "/trailing-space ",
        " //evil.com",
        "",
    };
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++)
        ck_assert_msg(!guest_is_safe_url(unsafe[i], host, false), "accepted %s",
                      unsafe[i]);
    ck_assert(!guest_is_safe_url(NULL, host, false));
    /* no downgrade from https */
    ck_assert(!guest_is_safe_url("http://testserver/x", host, true));
    ck_assert(guest_is_safe_url("https://testserver/x", host, true));
    /* without a Host, only relative targets */
    ck_assert(!guest_is_safe_url("http://testserver/x", NULL, false));
    ck_assert(guest_is_safe_url("/x", NULL, false));
    char longer[5000];
    memset(longer, 'a', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = '\0';
    ck_assert(!guest_is_safe_url(longer, host, false));
}
END_TEST

START_TEST(iri_to_uri_quotes_spaces_and_non_ascii)
{
    char *u = guest__iri_to_uri("/caf\xc3\xa9 bar?q=a b&x=%41\"<>");
    ck_assert_str_eq(u, "/caf%C3%A9%20bar?q=a%20b&x=%41%22%3C%3E");
    free(u);
}
END_TEST

/* ---- CSRF, on requests of the in-process adapter ---- */

typedef struct csrf_case {
    const char *submitted;
    guest_status st;
    guest_error err;
    const char *token;
    char token_copy[80];
    char token_again[80];
} csrf_case;

static void check_handler(guest_req *req, void *ud)
{
    csrf_case *c = ud;
    c->st = guest_csrf_check(req, c->submitted, &c->err);
}

static void token_handler(guest_req *req, void *ud)
{
    csrf_case *c = ud;
    const char *t = NULL;
    c->st = guest_csrf_token(req, &t);
    snprintf(c->token_copy, sizeof c->token_copy, "%s", t ? t : "");
    ck_assert_int_eq(guest_csrf_token(req, &t), GUEST_OK);
    snprintf(c->token_again, sizeof c->token_again, "%s", t);
}

static guest_status csrf_run(tl_http *h, csrf_case *c)
{
    tl_http_run(&fake_ctx, h, check_handler, c);
    tl_http_free(h);
    return c->st;
}

static void post(tl_http *h, const char *cookie)
{
    tl_http_init(h, "POST", "/convert/");
    tl_http_add(h, "Host", "testserver");
    if (cookie)
        tl_http_add(h, "Cookie", cookie);
}

START_TEST(csrf_token_sets_cookie_and_masks)
{
    tl_http h;
    csrf_case c = {0};
    tl_http_init(&h, "GET", "/convert/");
    tl_http_run(&fake_ctx, &h, token_handler, &c);
    ck_assert_int_eq(c.st, GUEST_OK);
    ck_assert_uint_eq(strlen(c.token_copy), 64);
    ck_assert_str_eq(c.token_copy, c.token_again); /* one token a request */
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "csrftoken", cookie, sizeof cookie));
    const char *set = tl_http_res_header(&h, "Set-Cookie");
    ck_assert_ptr_null(strstr(set, "HttpOnly"));
    ck_assert_ptr_nonnull(strstr(set, "SameSite=Lax"));
    ck_assert_ptr_nonnull(strstr(set, "Max-Age=31449600"));
    tl_http_free(&h);
    ck_assert_uint_eq(strlen(cookie), strlen("csrftoken=") + 32);

    /* the masked token checks against the cookie's secret */
    csrf_case k = {.submitted = c.token_copy};
    post(&h, cookie);
    ck_assert_int_eq(csrf_run(&h, &k), GUEST_OK);

    /* a visitor who has the cookie gets no new one, and a fresh mask */
    csrf_case d = {0};
    tl_http_init(&h, "GET", "/convert/");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_run(&fake_ctx, &h, token_handler, &d);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    ck_assert_str_ne(d.token_copy, c.token_copy);
    tl_http_free(&h);
    k.submitted = d.token_copy;
    post(&h, cookie);
    ck_assert_int_eq(csrf_run(&h, &k), GUEST_OK);
}
END_TEST

START_TEST(csrf_check_failures)
{
    const char *good_cookie = "csrftoken=" TL_CSRF;
    struct {
        const char *cookie, *submitted, *header, *reason;
    } cases[] = {
        {NULL, TL_CSRF, NULL, "CSRF cookie not set."},
        {"csrftoken=short", TL_CSRF, NULL, "CSRF cookie not set."},
        {"other=" TL_CSRF, TL_CSRF, NULL, "CSRF cookie not set."},
        {good_cookie, NULL, NULL, "CSRF token missing."},
        {good_cookie, "", NULL, "CSRF token missing."},
        {good_cookie, "abc", NULL, "CSRF token has incorrect length."},
        {good_cookie, "abcdefghijklmnopqrstuvwxyzABCDE!", NULL,
         "CSRF token has invalid characters."},
        {good_cookie, "bbcdefghijklmnopqrstuvwxyzABCDEF", NULL,
         "CSRF token incorrect."},
        {good_cookie, NULL, "bbcdefghijklmnopqrstuvwxyzABCDEF",
         "CSRF token incorrect."},
        /* a masked token of another secret */
        {good_cookie,
         "0000000000000000000000000000000000000000000000000000000000000000",
         NULL, "CSRF token incorrect."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        csrf_case c = {.submitted = cases[i].submitted};
        post(&h, cases[i].cookie);
        if (cases[i].header)
            tl_http_add(&h, "X-CSRFToken", cases[i].header);
        ck_assert_int_eq(csrf_run(&h, &c), GUEST_ERR_CSRF);
        ck_assert_str_eq(c.err.message, cases[i].reason);
    }
    /* the header carries the token when no field does */
    tl_http h;
    csrf_case c = {0};
    post(&h, good_cookie);
    tl_http_add(&h, "X-CSRFToken", TL_CSRF);
    ck_assert_int_eq(csrf_run(&h, &c), GUEST_OK);
}
END_TEST

START_TEST(csrf_origin_and_referer)
{
    const char *cookie = "csrftoken=" TL_CSRF;
    struct {
        bool https;
        const char *origin, *referer;
        guest_status want;
    } cases[] = {
        {true, "https://testserver", NULL, GUEST_OK},
        {true, "https://TestServer:443", NULL, GUEST_OK},
        {true, "https://evil.com", NULL, GUEST_ERR_CSRF},
        {true, "http://testserver", NULL, GUEST_ERR_CSRF},
        {true, "null", NULL, GUEST_ERR_CSRF},
        {true, "https://testserver.evil.com", NULL, GUEST_ERR_CSRF},
        {true, "https://testserver/path", NULL, GUEST_ERR_CSRF},
        {true, NULL, NULL, GUEST_ERR_CSRF},
        {true, NULL, "https://testserver/convert/", GUEST_OK},
        {true, NULL, "http://testserver/convert/", GUEST_ERR_CSRF},
        {true, NULL, "https://evil.com/convert/", GUEST_ERR_CSRF},
        {true, NULL, "https://evil.com@testserver/", GUEST_ERR_CSRF},
        {false, NULL, NULL, GUEST_OK},
        {false, "http://testserver", NULL, GUEST_OK},
        {false, "https://testserver", NULL, GUEST_OK},
        {false, "http://evil.com", NULL, GUEST_ERR_CSRF},
        {false, NULL, "http://evil.com/", GUEST_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        csrf_case c = {.submitted = TL_CSRF};
        post(&h, cookie);
        h.https = cases[i].https;
        if (cases[i].origin)
            tl_http_add(&h, "Origin", cases[i].origin);
        if (cases[i].referer)
            tl_http_add(&h, "Referer", cases[i].referer);
        ck_assert_msg(csrf_run(&h, &c) == cases[i].want, "case %zu: %s (%s)", i,
                      guest_status_name(c.st), c.err.message);
    }
}
END_TEST

static void cookies_handler(guest_req *req, void *ud)
{
    csrf_case *c = ud;
    ck_assert_int_eq(guest__set_session_cookie(req, "tok"), GUEST_OK);
    ck_assert_int_eq(guest__clear_session_cookie(req), GUEST_OK);
    c->st = guest_csrf_token(req, &c->token);
}

/* The session cookie and the CSRF cookie share one Set-Cookie builder;
 * each keeps its own attributes (only the session one is HttpOnly). */
START_TEST(cookie_lines_keep_their_attributes)
{
    for (int secure = 0; secure < 2; secure++) {
        fake_ctx.cfg.cookie_domain = secure ? "example.com" : NULL;
        fake_ctx.cfg.cookie_secure = secure;
        fake_ctx.cfg.cookie_samesite = secure ? "Strict" : "Lax";
        tl_http h;
        csrf_case c = {0};
        tl_http_init(&h, "GET", "/");
        tl_http_run(&fake_ctx, &h, cookies_handler, &c);
        ck_assert_int_eq(c.st, GUEST_OK);
        /* handing out a session also keeps shared caches away, once */
        ck_assert_int_eq(h.nres_headers, 5);
        ck_assert_str_eq(h.res_headers[0][0], "Vary");
        ck_assert_str_eq(h.res_headers[0][1], "Cookie");
        ck_assert_str_eq(h.res_headers[1][0], "Cache-Control");
        ck_assert_str_eq(h.res_headers[1][1], "private");
        const char *attrs =
            secure ? "; Path=/; Domain=example.com" : "; Path=/";
        const char *tail =
            secure ? "; SameSite=Strict; Secure" : "; SameSite=Lax";
        char want[256];
        snprintf(want, sizeof want,
                 "sessionid=tok; Max-Age=1209600%s; HttpOnly%s", attrs, tail);
        ck_assert_str_eq(h.res_headers[2][0], "Set-Cookie");
        ck_assert_str_eq(h.res_headers[2][1], want);
        snprintf(want, sizeof want, "sessionid=\"\"; Max-Age=0%s; HttpOnly%s",
                 attrs, tail);
        ck_assert_str_eq(h.res_headers[3][1], want);
        const char *csrf = h.res_headers[4][1];
        ck_assert_int_eq(strncmp(csrf, "csrftoken=", 10), 0);
        snprintf(want, sizeof want, "; Max-Age=31449600%s%s", attrs, tail);
        ck_assert_str_eq(csrf + 10 + 32, want);
        tl_http_free(&h);
    }
}
END_TEST

START_TEST(secure_proxy_header_marks_https)
{
    fake_ctx.cfg.secure_proxy_header = "X-Forwarded-Proto";
    tl_http h;
    csrf_case c = {.submitted = TL_CSRF};
    post(&h, "csrftoken=" TL_CSRF);
    tl_http_add(&h, "X-Forwarded-Proto", "https, http");
    tl_http_add(&h, "Origin", "http://testserver");
    ck_assert_int_eq(csrf_run(&h, &c), GUEST_ERR_CSRF);
    post(&h, "csrftoken=" TL_CSRF);
    tl_http_add(&h, "X-Forwarded-Proto", "https");
    tl_http_add(&h, "Origin", "https://testserver");
    ck_assert_int_eq(csrf_run(&h, &c), GUEST_OK);
    /* without the setting the header means nothing */
    fake_ctx.cfg.secure_proxy_header = NULL;
    post(&h, "csrftoken=" TL_CSRF);
    tl_http_add(&h, "X-Forwarded-Proto", "https");
    ck_assert_int_eq(csrf_run(&h, &c), GUEST_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("accounts_units");
    TCase *tc = tcase_create("passwords");
    tcase_add_loop_test(tc, hash_matches_django_vectors, 0, (int)NVECTORS);
    tcase_add_loop_test(tc, django_hashes_verify, 0, (int)NVECTORS);
    tcase_add_test(tc, hash_has_random_salt_and_config_iterations);
    tcase_add_test(tc, hash_refuses_bad_input);
    tcase_add_test(tc, verify_refuses_unusable_and_malformed);
    tcase_add_test(tc, hash_into_small_buffer_leaves_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("validators");
    tcase_add_checked_fixture(tc, fake_setup, NULL);
    tcase_add_test(tc, username_rules);
    tcase_add_test(tc, password_validators_give_django_messages);
    tcase_add_test(tc, password_checks_are_configurable);
    tcase_add_test(tc, utf8_is_decoded_strictly);
    tcase_add_test(tc, similarity_lowers_beyond_ascii_and_skips_empty_parts);
    tcase_add_test(tc, palindromes_are_common);
    tcase_add_test(tc, form_errors_truncate_on_character_boundary);
    suite_add_tcase(s, tc);

    tc = tcase_create("forms");
    tcase_add_test(tc, urlencoded_forms);
    tcase_add_test(tc, percent_decoding);
    tcase_add_test(tc, media_types);
    tcase_add_test(tc, form_statuses_map_to_http);
    tcase_add_test(tc, duplicate_and_excess_fields_are_refused);
    tcase_add_test(tc, json_forms);
    tcase_add_test(tc, json_forms_refuse_nesting_without_recursion);
    tcase_add_test(tc, json_forms_refuse_too_many_fields_before_parsing);
    tcase_add_test(tc, safe_urls);
    tcase_add_test(tc, unsafe_urls);
    tcase_add_test(tc, iri_to_uri_quotes_spaces_and_non_ascii);
    suite_add_tcase(s, tc);

    tc = tcase_create("csrf");
    tcase_add_checked_fixture(tc, fake_setup, NULL);
    tcase_add_test(tc, csrf_token_sets_cookie_and_masks);
    tcase_add_test(tc, csrf_check_failures);
    tcase_add_test(tc, csrf_origin_and_referer);
    tcase_add_test(tc, cookie_lines_keep_their_attributes);
    tcase_add_test(tc, secure_proxy_header_marks_https);
    suite_add_tcase(s, tc);

    return tl_run(s);
}
