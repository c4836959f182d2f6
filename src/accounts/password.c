/* Django-compatible PBKDF2-SHA256 password hashes. */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "accounts/accounts.h"

#define ALGORITHM "pbkdf2_sha256"
#define DK_BYTES 32
/* Django's salt: 22 characters of 62 give about 131 bits. */
#define SALT_CHARS 22
#define SALT_MAX 128

guest_status guest__random_alnum(char *out, size_t n)
{
    static const char alnum[] = GUEST__ALNUM;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        guest_status st = guest__random_below(sizeof alnum - 1, &v);
        if (st != GUEST_OK)
            return st;
        out[i] = alnum[v];
    }
    out[n] = '\0';
    return GUEST_OK;
}

_Atomic unsigned long long guest__pbkdf2_runs;
_Atomic unsigned long long guest__pbkdf2_iterations;

guest_status guest__password_hash_salt(const char *password, const char *salt,
                                       unsigned iterations, char *out,
                                       size_t size)
{
    if (!password || !*password || !salt || !*salt || !out ||
        strchr(salt, '$') || strlen(salt) > SALT_MAX || iterations < 1 ||
        iterations > INT_MAX || strlen(password) > INT_MAX)
        return GUEST_ERR_INVALID;
    unsigned char dk[DK_BYTES];
    atomic_fetch_add(&guest__pbkdf2_runs, 1);
    atomic_fetch_add(&guest__pbkdf2_iterations, iterations);
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password),
                          (const unsigned char *)salt, (int)strlen(salt),
                          (int)iterations, EVP_sha256(), sizeof dk, dk) != 1)
        return GUEST_ERR_CRYPTO;
    /* Django stores standard base64 with its '=' padding. */
    char b64[4 * ((DK_BYTES + 2) / 3) + 1];
    int encoded = EVP_EncodeBlock((unsigned char *)b64, dk, sizeof dk);
    OPENSSL_cleanse(dk, sizeof dk);
    if (encoded != (int)sizeof b64 - 1) {
        OPENSSL_cleanse(b64, sizeof b64);
        return GUEST_ERR_CRYPTO;
    }
    int n = snprintf(out, size, ALGORITHM "$%u$%s$%s", iterations, salt, b64);
    OPENSSL_cleanse(b64, sizeof b64);
    if (n < 0 || (size_t)n >= size) {
        /* Not even a cut-off part of the hash stays behind. */
        OPENSSL_cleanse(out, size);
        return GUEST_ERR_INVALID;
    }
    return GUEST_OK;
}

guest_status guest_password_hash(const char *password, unsigned iterations,
                                 char *out, size_t size)
{
    if (!password || !*password || !out || iterations < 1 ||
        iterations > INT_MAX)
        return GUEST_ERR_INVALID;
    char salt[SALT_CHARS + 1];
    guest_status st = guest__random_alnum(salt, SALT_CHARS);
    if (st != GUEST_OK)
        return st;
    return guest__password_hash_salt(password, salt, iterations, out, size);
}

/* Splits "pbkdf2_sha256$<iterations>$<salt>$<hash>"; false for anything
 * else, including a number with a sign, leading zero or overflow. */
static bool parse(const char *encoded, unsigned *iterations, const char **salt,
                  size_t *salt_len)
{
    size_t alen = strlen(ALGORITHM);
    if (strncmp(encoded, ALGORITHM "$", alen + 1) != 0)
        return false;
    const char *p = encoded + alen + 1;
    if (*p < '1' || *p > '9')
        return false;
    unsigned long long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned)(*p++ - '0');
        if (v > INT_MAX)
            return false;
    }
    if (*p++ != '$')
        return false;
    const char *s = p, *end = strchr(s, '$');
    if (!end || end == s || (size_t)(end - s) > SALT_MAX || !end[1])
        return false;
    *iterations = (unsigned)v;
    *salt = s;
    *salt_len = (size_t)(end - s);
    return true;
}

bool guest__password_iterations(const char *encoded, unsigned *iterations)
{
    const char *salt;
    size_t salt_len;
    return encoded && parse(encoded, iterations, &salt, &salt_len);
}

bool guest_password_verify(const char *password, const char *encoded)
{
    if (!password || !*password || !encoded)
        return false;
    unsigned iterations;
    const char *s;
    size_t slen;
    if (!parse(encoded, &iterations, &s, &slen))
        return false;
    char salt[SALT_MAX + 1];
    memcpy(salt, s, slen);
    salt[slen] = '\0';
    char mine[GUEST_PASSWORD_HASH_BUF + SALT_MAX];
    if (guest__password_hash_salt(password, salt, iterations, mine,
                                  sizeof mine) != GUEST_OK)
        return false;
    /* The lengths are public (they follow from the stored hash's format);
     * only the content is compared in constant time. */
    size_t n = strlen(mine);
    bool same = n == strlen(encoded) && CRYPTO_memcmp(mine, encoded, n) == 0;
    OPENSSL_cleanse(mine, sizeof mine);
    return same;
}

bool guest__password_usable(const char *stored)
{
    return stored && stored[0] && stored[0] != '!';
}
