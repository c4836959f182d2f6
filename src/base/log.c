/* Log lines from the library: to the application's callback, else stderr. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "base/base.h"

static void vlog(const guest_ctx *ctx, guest_log_level level, const char *fmt,
                 va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    /* One message, one line: libpq's messages end in a newline and carry
     * "\n\t" hints, and a client's bytes may reach a message too. Runs of
     * control characters become one space; trailing blanks go. */
    size_t w = 0;
    for (size_t r = 0; line[r]; r++) {
        unsigned char c = (unsigned char)line[r];
        if (c < 0x20 || c == 0x7f) {
            if (w && line[w - 1] != ' ')
                line[w++] = ' ';
        } else {
            line[w++] = (char)c;
        }
    }
    while (w && line[w - 1] == ' ')
        w--;
    line[w] = '\0';
    if (ctx && ctx->cfg.log) {
        ctx->cfg.log(level, line, ctx->cfg.log_userdata);
        return;
    }
    static const char *const names[] = {"error", "warning", "info"};
    const char *name =
        (unsigned)level < sizeof names / sizeof *names ? names[level] : "log";
    /* One fprintf per line: stdio locks the stream, so lines from several
     * threads do not interleave. */
    fprintf(stderr, "guestuser: %s: %s\n", name, line);
}

void guest__log(const guest_ctx *ctx, guest_log_level level, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, fmt, ap);
    va_end(ap);
}

bool guest__log_every(const guest_ctx *ctx, _Atomic int64_t *last,
                      int64_t interval_ms, guest_log_level level,
                      const char *fmt, ...)
{
    int64_t now = guest__now_ms();
    int64_t prev = atomic_load(last);
    /* Only the thread that moves the timestamp forward logs: a flood of
     * requests hitting the same condition produces one line. */
    if (prev != 0 && now - prev < interval_ms)
        return false;
    if (!atomic_compare_exchange_strong(last, &prev, now))
        return false;
    va_list ap;
    va_start(ap, fmt);
    vlog(ctx, level, fmt, ap);
    va_end(ap);
    return true;
}
