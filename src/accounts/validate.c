/* Form error lists, Django's username rules and password validators. */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include <pwquality.h>

#include "accounts/accounts.h"

void guest_form_errors_add(guest_form_errors *errors, const char *field,
                           const char *message)
{
    if (!errors || !field || !message)
        return;
    size_t cap = sizeof errors->items / sizeof *errors->items;
    if (errors->count >= cap)
        return;
    guest_field_error *e = &errors->items[errors->count++];
    e->field = field;
    size_t n = strlen(message);
    if (n >= sizeof e->message) {
        /* Cut before a UTF-8 continuation byte so the text stays valid. */
        n = sizeof e->message - 1;
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(e->message, message, n);
    e->message[n] = '\0';
}

guest_form_errors *guest__form_errors_reset(guest_form_errors *errors,
                                            guest_form_errors *local)
{
    if (!errors)
        errors = local;
    errors->count = 0;
    return errors;
}

void guest__form_errors_refused(guest_form_errors *errors, guest_status st,
                                const char *locked_out)
{
    if (!errors)
        return;
    errors->count = 0;
    if (st == GUEST_ERR_RATE_LIMITED)
        guest_form_errors_add(errors, "__all__", locked_out);
}

const char *guest_form_errors_get(const guest_form_errors *errors,
                                  const char *field)
{
    if (!errors || !field)
        return NULL;
    for (size_t i = 0; i < errors->count; i++)
        if (!strcmp(errors->items[i].field, field))
            return errors->items[i].message;
    return NULL;
}

/* Python's str.lower() and \w differ from C's; a C.UTF-8 locale object
 * gives Unicode classes without touching the process locale, so it is safe
 * in any thread. Without it only ASCII letters count. */
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale = (locale_t)0;

static void load_utf8_locale(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static bool is_word_char(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               (cp >= '0' && cp <= '9') || cp == '_';
    pthread_once(&utf8_once, load_utf8_locale);
    return utf8_locale != (locale_t)0 && iswalnum_l((wint_t)cp, utf8_locale);
}

static uint32_t lower(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    pthread_once(&utf8_once, load_utf8_locale);
    return utf8_locale != (locale_t)0
               ? (uint32_t)towlower_l((wint_t)cp, utf8_locale)
               : cp;
}

guest_status guest_username_validate(const char *username,
                                     guest_form_errors *errors)
{
    if (!username || !*username) {
        guest_form_errors_add(errors, "username", GUEST__MSG_REQUIRED);
        return GUEST_ERR_VALIDATION;
    }
    size_t chars = 0;
    bool ok = true;
    for (const unsigned char *p = (const unsigned char *)username; *p;) {
        uint32_t cp;
        size_t n = guest__utf8_next(p, &cp);
        if (!n) {
            ok = false;
            n = 1;
        } else if (!is_word_char(cp) && cp != '.' && cp != '@' && cp != '+' &&
                   cp != '-') {
            ok = false;
        }
        p += n;
        chars++;
    }
    guest_status st = GUEST_OK;
    if (chars > GUEST_USERNAME_MAX_CHARS) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 "Ensure this value has at most %d characters (it has %zu).",
                 GUEST_USERNAME_MAX_CHARS, chars);
        guest_form_errors_add(errors, "username", msg);
        st = GUEST_ERR_VALIDATION;
    }
    if (!ok) {
        guest_form_errors_add(errors, "username",
                              "Enter a valid username. This value may contain "
                              "only letters, numbers, and @/./+/-/_ "
                              "characters.");
        st = GUEST_ERR_VALIDATION;
    }
    return st;
}

/* Code points of @p s, lower-cased; a malformed byte stands for itself
 * shifted out of the Unicode range so it can never match a real letter. */
static uint32_t *lowered(const char *s, size_t *len)
{
    size_t n = guest__utf8_chars(s);
    uint32_t *out = malloc((n ? n : 1) * sizeof *out);
    if (!out)
        return NULL;
    size_t i = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; i++) {
        uint32_t cp;
        size_t k = guest__utf8_next(p, &cp);
        if (!k) {
            cp = 0x110000u + *p;
            k = 1;
        }
        out[i] = lower(cp);
        p += k;
    }
    *len = i;
    return out;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* difflib.SequenceMatcher(a, b).quick_ratio(): twice the size of the
 * multiset intersection over the total length. Both arrays get sorted. */
static double quick_ratio(uint32_t *a, size_t na, uint32_t *b, size_t nb)
{
    if (na + nb == 0)
        return 1.0;
    qsort(a, na, sizeof *a, cmp_u32);
    qsort(b, nb, sizeof *b, cmp_u32);
    size_t i = 0, j = 0, matches = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            matches++, i++, j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return 2.0 * (double)matches / (double)(na + nb);
}

static bool similar_part(const uint32_t *pw, size_t np, const uint32_t *part,
                         size_t len, uint32_t *wa, uint32_t *wb)
{
    const double max_similarity = 0.7;
    if (len == 0)
        return false;
    /* exceeds_maximum_length_ratio(): a part far shorter than the password
     * cannot make it weak. */
    if (np >= 10 * len && (double)len < max_similarity / 2 * (double)np)
        return false;
    memcpy(wa, pw, np * sizeof *wa);
    memcpy(wb, part, len * sizeof *wb);
    return quick_ratio(wa, np, wb, len) >= max_similarity;
}

/* Django's UserAttributeSimilarityValidator for the username: each part
 * between non-word characters (re.split(r"\W+")), then the whole name. */
static guest_status too_similar(const char *username, const char *password,
                                bool *similar)
{
    *similar = false;
    size_t np = 0, nu = 0;
    uint32_t *pw = lowered(password, &np);
    uint32_t *name = lowered(username, &nu);
    uint32_t *wa = malloc((np ? np : 1) * sizeof *wa);
    uint32_t *wb = malloc((nu ? nu : 1) * sizeof *wb);
    guest_status st = GUEST_OK;
    if (!pw || !name || !wa || !wb) {
        st = GUEST_ERR_NOMEM;
    } else {
        size_t start = 0;
        for (size_t i = 0; i <= nu && !*similar; i++) {
            if (i < nu && is_word_char(name[i]))
                continue;
            *similar = similar_part(pw, np, name + start, i - start, wa, wb);
            start = i + 1;
        }
        if (!*similar)
            *similar = similar_part(pw, np, name, nu, wa, wb);
    }
    free(pw);
    free(name);
    free(wa);
    free(wb);
    return st;
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* cracklib's dictionary lookup keeps state in statics, so calls into
 * libpwquality are serialized. */
static pthread_mutex_t pwq_lock = PTHREAD_MUTEX_INITIALIZER;

/* libpwquality with every composition rule off: only what Django's
 * CommonPasswordValidator stands for is left — cracklib's dictionary and
 * "too simplistic" checks, and palindromes. */
static guest_status common_check(const char *password, bool *common)
{
    *common = false;
    pwquality_settings_t *pwq = pwquality_default_settings();
    if (!pwq)
        return GUEST_ERR_NOMEM;
    static const int zero[] = {
        PWQ_SETTING_DIG_CREDIT,       PWQ_SETTING_UP_CREDIT,
        PWQ_SETTING_LOW_CREDIT,       PWQ_SETTING_OTH_CREDIT,
        PWQ_SETTING_MIN_CLASS,        PWQ_SETTING_MAX_REPEAT,
        PWQ_SETTING_MAX_CLASS_REPEAT, PWQ_SETTING_MAX_SEQUENCE,
        PWQ_SETTING_GECOS_CHECK,      PWQ_SETTING_USER_CHECK};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        pwquality_set_int_value(pwq, zero[i], 0);
    pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH, 1);
    pwquality_set_int_value(pwq, PWQ_SETTING_DICT_CHECK, 1);
    void *aux = NULL;
    pthread_mutex_lock(&pwq_lock);
    int rc = pwquality_check(pwq, password, NULL, NULL, &aux);
    pthread_mutex_unlock(&pwq_lock);
    pwquality_free_settings(pwq);
    guest_status st = GUEST_OK;
    switch (rc) {
    case PWQ_ERROR_MEM_ALLOC:
        st = GUEST_ERR_NOMEM;
        break;
    case PWQ_ERROR_CRACKLIB_CHECK:
        /* aux is cracklib's static message; a missing dictionary must not
         * read as "every password is common". */
        if (aux && !strcmp((const char *)aux, "error loading dictionary"))
            st = GUEST_ERR_CONFIG;
        else
            *common = true;
        break;
    case PWQ_ERROR_PALINDROME:
    case PWQ_ERROR_CASE_CHANGES_ONLY:
    case PWQ_ERROR_ROTATED:
    case PWQ_ERROR_MAX_CONSECUTIVE:
    case PWQ_ERROR_MAX_SEQUENCE:
    case PWQ_ERROR_MAX_CLASS_REPEAT:
    case PWQ_ERROR_BAD_WORDS:
        *common = true;
        break;
    default:
        /* Scores, and the length and emptiness checks our own validators
         * already judged with Django's messages. */
        break;
    }
    return st;
}

guest_status guest_password_validate(const guest_ctx *ctx, const char *username,
                                     const char *password, const char *field,
                                     guest_form_errors *errors)
{
    if (!ctx || !password || !field)
        return GUEST_ERR_INVALID;
    const guest_config *c = &ctx->cfg;
    guest_status st = GUEST_OK;
    if ((c->password_checks & GUEST_PW_CHECK_SIMILARITY) && username &&
        *username) {
        bool similar;
        guest_status s = too_similar(username, password, &similar);
        if (s != GUEST_OK)
            return s;
        if (similar) {
            guest_form_errors_add(errors, field,
                                  "The password is too similar to the "
                                  "username.");
            st = GUEST_ERR_VALIDATION;
        }
    }
    if (c->password_checks & GUEST_PW_CHECK_MIN_LENGTH) {
        size_t chars = guest__utf8_chars(password);
        if (chars < c->password_min_length) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "This password is too short. It must contain at least "
                     "%u character%s.",
                     c->password_min_length,
                     c->password_min_length == 1 ? "" : "s");
            guest_form_errors_add(errors, field, msg);
            st = GUEST_ERR_VALIDATION;
        }
    }
    if ((c->password_checks & GUEST_PW_CHECK_COMMON) && *password) {
        bool common;
        guest_status s = common_check(password, &common);
        if (s != GUEST_OK)
            return s;
        if (common) {
            guest_form_errors_add(errors, field,
                                  "This password is too common.");
            st = GUEST_ERR_VALIDATION;
        }
    }
    if ((c->password_checks & GUEST_PW_CHECK_NUMERIC) && *password &&
        all_digits(password)) {
        guest_form_errors_add(errors, field,
                              "This password is entirely numeric.");
        st = GUEST_ERR_VALIDATION;
    }
    if (c->password_check) {
        const char *msg = c->password_check(username ? username : "", password,
                                            c->password_check_userdata);
        if (msg) {
            guest_form_errors_add(errors, field, msg);
            st = GUEST_ERR_VALIDATION;
        }
    }
    return st;
}
