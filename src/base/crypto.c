/* Randomness, hashing and encodings, all from OpenSSL. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "base/base.h"

guest_status guest__random(void *buf, size_t len)
{
    if (len > (size_t)INT32_MAX)
        return GUEST_ERR_INVALID;
    return RAND_bytes(buf, (int)len) == 1 ? GUEST_OK : GUEST_ERR_CRYPTO;
}

guest_status guest__random_below(uint64_t bound, uint64_t *out)
{
    if (bound == 0)
        return GUEST_ERR_INVALID;
    /* Rejection sampling: a plain modulo would favour small values. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    for (;;) {
        uint64_t v;
        guest_status st = guest__random(&v, sizeof v);
        if (st != GUEST_OK)
            return st;
        if (v < limit) {
            *out = v % bound;
            return GUEST_OK;
        }
    }
}

/* OpenSSL 3 looks an algorithm up by name in its provider store on every
 * call that names it implicitly (EVP_sha256(), a MAC by name): a lock and a
 * search per request. Fetched once here and kept for the process's life,
 * they are shared by all threads, which OpenSSL allows. A failed fetch
 * leaves NULL, and the calls below then fall back to the implicit path. */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;

static void fetch_algorithms(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

guest_status guest__sha256(const void *data, size_t len,
                           unsigned char out[GUEST__SHA256_BYTES])
{
    unsigned int n = 0;
    pthread_once(&fetch_once, fetch_algorithms);
    if (EVP_Digest(data, len, out, &n, sha256_md ? sha256_md : EVP_sha256(),
                   NULL) != 1 ||
        n != GUEST__SHA256_BYTES) {
        /* Never a half-written digest that could match something. */
        OPENSSL_cleanse(out, GUEST__SHA256_BYTES);
        return GUEST_ERR_CRYPTO;
    }
    return GUEST_OK;
}

void guest__b64url_encode(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    if (n < 0)
        n = 0;
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

bool guest__b64url_decode(const char *in, size_t inlen, unsigned char *out,
                          size_t outlen)
{
    /* Decoded by hand rather than by EVP_DecodeBlock because that one
     * accepts whitespace and standard-alphabet characters, and we want
     * exactly one spelling of each token. */
    if (inlen != (outlen * 4 + 2) / 3)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return false;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two strings would decode alike. */
    return o == outlen && (acc & ((1u << bits) - 1)) == 0;
}

guest_status guest__hmac_sha256(const void *key, size_t keylen,
                                const char *label, const void *data, size_t len,
                                unsigned char out[GUEST__SHA256_BYTES])
{
    pthread_once(&fetch_once, fetch_algorithms);
    EVP_MAC *mac = hmac_mac ? NULL : EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mc = hmac_mac ? EVP_MAC_CTX_new(hmac_mac)
                      : mac    ? EVP_MAC_CTX_new(mac)
                               : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(
                               OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t n = 0;
    bool ok = mc && EVP_MAC_init(mc, key, keylen, params) == 1 &&
              EVP_MAC_update(mc, (const unsigned char *)label,
                             strlen(label) + 1) == 1 &&
              EVP_MAC_update(mc, data, len) == 1 &&
              EVP_MAC_final(mc, out, &n, GUEST__SHA256_BYTES) == 1 &&
              n == GUEST__SHA256_BYTES;
    EVP_MAC_CTX_free(mc);
    EVP_MAC_free(mac);
    return ok ? GUEST_OK : GUEST_ERR_CRYPTO;
}
