/* Resolved sessions kept in this process for session_cache_ttl seconds, so
 * a returning visitor costs no database round trip. What other processes
 * change is heard through the schema's notifications (store/listen.c); the
 * cache answers only while that connection is listening. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

#define MAX_SHARDS 64
/* Fewer shards for a small cache, so each still holds a useful LRU list. */
#define MIN_PER_SHARD 16
#define NONE (-1)

typedef struct entry {
    unsigned char hash[GUEST__SHA256_BYTES];
    guest_user user;
    int64_t expires_ms; /* guest__now_ms() time */
    uint64_t epoch;     /* ctx->session_epoch when its lookup began */
    int32_t chain;      /* next in the bucket; free list when unused */
    int32_t newer, older;
} entry;

/* One lock per shard: requests for different sessions rarely meet. Each
 * shard on cache lines of its own, so the locks do not share one. */
typedef struct shard {
    _Alignas(64) pthread_mutex_t mu;
    /* Moved on by every drop: a lookup that began before one does not
     * store what it read (it may be what the drop removed). */
    _Atomic uint64_t gen;
    entry *entries;
    int32_t *buckets;
    uint32_t mask; /* buckets - 1 */
    int32_t cap, count;
    int32_t free_list;
    int32_t newest, oldest; /* LRU: newest is used last */
} shard;

struct guest__session_cache {
    shard *shards;
    unsigned nshards;
    /* True only while the LISTEN connection is up: then no change made
     * elsewhere can go unheard. Off, every lookup asks the database. */
    _Atomic bool live;
    int64_t ttl_ms;
    guest__listener *listener;
};

static uint64_t key_of(const unsigned char *hash)
{
    /* The hash is SHA-256 of a random token: any of its bits are uniform. */
    uint64_t k;
    memcpy(&k, hash, sizeof k);
    return k;
}

static shard *shard_of(const guest__session_cache *c, uint64_t k)
{
    return &c->shards[k & (c->nshards - 1)];
}

static int32_t *bucket_of(shard *s, uint64_t k)
{
    return &s->buckets[(k >> 32) & s->mask];
}

guest_status guest__session_cache_new(const guest_config *cfg,
                                      guest__session_cache **out)
{
    *out = NULL;
    unsigned size = cfg->session_cache_size;
    unsigned n = 1;
    while (n < MAX_SHARDS && (n * 2) * MIN_PER_SHARD <= size)
        n *= 2;
    guest__session_cache *c = calloc(1, sizeof *c);
    if (!c)
        return GUEST_ERR_NOMEM;
    c->ttl_ms = (int64_t)cfg->session_cache_ttl * 1000;
    c->shards = aligned_alloc(_Alignof(shard), n * sizeof(shard));
    if (!c->shards) {
        free(c);
        return GUEST_ERR_NOMEM;
    }
    memset(c->shards, 0, n * sizeof(shard));
    for (unsigned i = 0; i < n; i++) {
        shard *s = &c->shards[i];
        /* The total is exactly session_cache_size. */
        s->cap = (int32_t)(size / n + (i < size % n));
        uint32_t buckets = 1;
        while (buckets < (uint32_t)s->cap * 2)
            buckets *= 2;
        s->mask = buckets - 1;
        s->entries = calloc((size_t)s->cap, sizeof *s->entries);
        s->buckets = malloc(buckets * sizeof *s->buckets);
        if (!s->entries || !s->buckets ||
            pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->entries);
            free(s->buckets);
            s->entries = NULL;
            s->buckets = NULL;
            c->nshards = i;
            guest__session_cache_free(c);
            return GUEST_ERR_NOMEM;
        }
        for (uint32_t b = 0; b < buckets; b++)
            s->buckets[b] = NONE;
        for (int32_t e = 0; e < s->cap; e++)
            s->entries[e].chain = e + 1 < s->cap ? e + 1 : NONE;
        s->free_list = 0;
        s->newest = s->oldest = NONE;
    }
    c->nshards = n;
    *out = c;
    return GUEST_OK;
}

void guest__session_cache_free(guest__session_cache *c)
{
    if (!c)
        return;
    guest__listener_stop(c->listener);
    for (unsigned i = 0; i < c->nshards; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_destroy(&s->mu);
        /* Token hashes are not secrets, but the names need not linger. */
        OPENSSL_cleanse(s->entries, (size_t)s->cap * sizeof *s->entries);
        free(s->entries);
        free(s->buckets);
    }
    free(c->shards);
    free(c);
}

static void lru_unlink(shard *s, int32_t i)
{
    entry *e = &s->entries[i];
    if (e->newer != NONE)
        s->entries[e->newer].older = e->older;
    else
        s->newest = e->older;
    if (e->older != NONE)
        s->entries[e->older].newer = e->newer;
    else
        s->oldest = e->newer;
}

static void lru_push(shard *s, int32_t i)
{
    entry *e = &s->entries[i];
    e->newer = NONE;
    e->older = s->newest;
    if (s->newest != NONE)
        s->entries[s->newest].newer = i;
    s->newest = i;
    if (s->oldest == NONE)
        s->oldest = i;
}

/* The index of @p hash in @p s, and the link that points at it. */
static int32_t find(shard *s, const unsigned char *hash, uint64_t k,
                    int32_t **link)
{
    int32_t *l = bucket_of(s, k);
    while (*l != NONE) {
        entry *e = &s->entries[*l];
        if (!memcmp(e->hash, hash, GUEST__SHA256_BYTES))
            break;
        l = &e->chain;
    }
    if (link)
        *link = l;
    return *l;
}

static void remove_at(shard *s, int32_t *link)
{
    int32_t i = *link;
    entry *e = &s->entries[i];
    *link = e->chain;
    lru_unlink(s, i);
    memset(e->user.username, 0, sizeof e->user.username);
    e->chain = s->free_list;
    s->free_list = i;
    s->count--;
}

static void remove_entry(shard *s, int32_t i)
{
    int32_t *link;
    find(s, s->entries[i].hash, key_of(s->entries[i].hash), &link);
    remove_at(s, link);
}

guest__cache_ticket guest__session_cache_ticket(guest_ctx *ctx,
                                                const unsigned char *hash)
{
    guest__cache_ticket t = {0};
    guest__session_cache *c = ctx->core->session_cache;
    if (c) {
        t.gen = atomic_load(&shard_of(c, key_of(hash))->gen);
        t.epoch = atomic_load(&ctx->session_epoch);
    }
    return t;
}

bool guest__session_cache_get(guest_ctx *ctx, const unsigned char *hash,
                              guest_user *user)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c || !atomic_load(&c->live))
        return false;
    uint64_t k = key_of(hash);
    shard *s = shard_of(c, k);
    uint64_t epoch = atomic_load(&ctx->session_epoch);
    int64_t now = guest__now_ms();
    bool hit = false;
    pthread_mutex_lock(&s->mu);
    int32_t *link;
    int32_t i = find(s, hash, k, &link);
    if (i != NONE) {
        entry *e = &s->entries[i];
        if (e->expires_ms <= now || e->epoch != epoch) {
            remove_at(s, link);
        } else {
            *user = e->user;
            lru_unlink(s, i);
            lru_push(s, i);
            hit = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void guest__session_cache_put(guest_ctx *ctx, const unsigned char *hash,
                              const guest_user *user, int64_t ms_left,
                              const guest__cache_ticket *ticket)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c || ms_left <= 0 || !atomic_load(&c->live))
        return;
    uint64_t k = key_of(hash);
    shard *s = shard_of(c, k);
    int64_t expires =
        guest__now_ms() + (ms_left < c->ttl_ms ? ms_left : c->ttl_ms);
    pthread_mutex_lock(&s->mu);
    /* A drop (logout, password change, cleanup) since the lookup began:
     * what it read may be gone already. The next request asks again. */
    if (atomic_load(&s->gen) != ticket->gen ||
        atomic_load(&ctx->session_epoch) != ticket->epoch) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int32_t *link;
    int32_t i = find(s, hash, k, &link);
    if (i != NONE) {
        lru_unlink(s, i);
    } else {
        if (s->free_list == NONE)
            remove_entry(s, s->oldest);
        i = s->free_list;
        s->free_list = s->entries[i].chain;
        entry *e = &s->entries[i];
        memcpy(e->hash, hash, GUEST__SHA256_BYTES);
        int32_t *b = bucket_of(s, k);
        e->chain = *b;
        *b = i;
        s->count++;
    }
    entry *e = &s->entries[i];
    e->user = *user;
    e->expires_ms = expires;
    e->epoch = ticket->epoch;
    lru_push(s, i);
    pthread_mutex_unlock(&s->mu);
}

void guest__session_cache_drop_token(guest_ctx *ctx, const unsigned char *hash)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c)
        return;
    uint64_t k = key_of(hash);
    shard *s = shard_of(c, k);
    pthread_mutex_lock(&s->mu);
    int32_t *link;
    if (find(s, hash, k, &link) != NONE)
        remove_at(s, link);
    atomic_fetch_add(&s->gen, 1);
    pthread_mutex_unlock(&s->mu);
}

void guest__session_cache_drop_user(guest_ctx *ctx, int64_t user_id)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c)
        return;
    /* No index by user: this walks every entry, a few milliseconds at the
     * largest size, for operations far rarer than lookups. */
    for (unsigned n = 0; n < c->nshards; n++) {
        shard *s = &c->shards[n];
        pthread_mutex_lock(&s->mu);
        for (int32_t i = s->newest; i != NONE;) {
            int32_t older = s->entries[i].older;
            if (s->entries[i].user.id == user_id)
                remove_entry(s, i);
            i = older;
        }
        atomic_fetch_add(&s->gen, 1);
        pthread_mutex_unlock(&s->mu);
    }
}

size_t guest__session_cache_count(guest_ctx *ctx)
{
    guest__session_cache *c = ctx->core->session_cache;
    size_t total = 0;
    for (unsigned n = 0; c && n < c->nshards; n++) {
        shard *s = &c->shards[n];
        pthread_mutex_lock(&s->mu);
        total += (size_t)s->count;
        pthread_mutex_unlock(&s->mu);
    }
    return total;
}

/* Every entry stale, and every lookup running now kept from storing what
 * it read: the epoch is part of each entry and of each ticket. */
static void flush(guest_ctx *ctx)
{
    atomic_fetch_add(&ctx->session_epoch, 1);
}

/* More users than this in one notification: one flush instead of a walk
 * of the whole cache per user. */
#define USERS_WALKED_MAX 8

static void drop_tokens(guest_ctx *ctx, const char *p)
{
    while (*p) {
        unsigned char hash[GUEST__SHA256_BYTES];
        for (size_t i = 0; i < sizeof hash; i++) {
            int hi = guest__hex_value(p[2 * i]);
            int lo = hi < 0 ? -1 : guest__hex_value(p[2 * i + 1]);
            if (lo < 0) {
                flush(ctx); /* not what the triggers send: trust nothing */
                return;
            }
            hash[i] = (unsigned char)(hi << 4 | lo);
        }
        guest__session_cache_drop_token(ctx, hash);
        p += 2 * sizeof hash;
        if (*p == ',')
            p++;
        else if (*p) {
            flush(ctx);
            return;
        }
    }
}

static void drop_users(guest_ctx *ctx, const char *p)
{
    int64_t ids[USERS_WALKED_MAX];
    size_t n = 0;
    while (*p) {
        char *end;
        errno = 0;
        long long id = strtoll(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') ||
            n == USERS_WALKED_MAX) {
            flush(ctx);
            return;
        }
        ids[n++] = id;
        p = *end ? end + 1 : end;
    }
    for (size_t i = 0; i < n; i++)
        guest__session_cache_drop_user(ctx, ids[i]);
}

/* On the listener's thread. */
static void on_listen(void *arg, guest__listen_event ev, const char *payload)
{
    guest_ctx *ctx = arg;
    guest__session_cache *c = ctx->core->session_cache;
    switch (ev) {
    case GUEST__LISTEN_UP:
        /* What was cached before LISTEN took effect may have missed a
         * change: emptied first, then trusted again. */
        flush(ctx);
        atomic_store(&c->live, true);
        break;
    case GUEST__LISTEN_DOWN:
        atomic_store(&c->live, false);
        flush(ctx);
        break;
    case GUEST__LISTEN_PAYLOAD:
        guest__count(ctx, GUEST__C_SESSION_CACHE_INVALIDATIONS);
        if (!strncmp(payload, "s:", 2))
            drop_tokens(ctx, payload + 2);
        else if (!strncmp(payload, "u:", 2))
            drop_users(ctx, payload + 2);
        else /* "flush", or anything this version does not know */
            flush(ctx);
        break;
    }
}

guest_status guest__session_cache_listen(guest_ctx *ctx, bool behind_pooler,
                                         guest_error *err)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c)
        return GUEST_OK;
    const char *conninfo = ctx->cfg.session_cache_listen_conninfo;
    if (!conninfo && behind_pooler) {
        /* A transaction-mode pooler passes LISTEN to whichever server
         * connection is free and then hands that to other clients: the
         * listener would think itself up and hear nothing. */
        guest__log(ctx, GUEST_LOG_WARNING,
                   "session cache off: behind a transaction-mode pooler it "
                   "needs session_cache_listen_conninfo naming PostgreSQL "
                   "itself (docs/scaling.md)");
        return GUEST_OK;
    }
    return guest__listener_start(ctx,
                                 conninfo ? conninfo : ctx->cfg.db_conninfo,
                                 on_listen, ctx, &c->listener, err);
}

void guest__session_cache_unlisten(guest_ctx *ctx)
{
    guest__session_cache *c = ctx->core->session_cache;
    if (!c)
        return;
    guest__listener_stop(c->listener);
    c->listener = NULL;
    atomic_store(&c->live, false);
}

bool guest__session_cache_listening(guest_ctx *ctx)
{
    guest__session_cache *c = ctx->core->session_cache;
    return c && atomic_load(&c->live);
}
