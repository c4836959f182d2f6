/* One mail as RFC 5322 text: headers, MIME parts, encodings. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/mail.h"

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put_n(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put(buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

static void put_c(buf *b, char c)
{
    put_n(b, &c, 1);
}

static guest__mail_build_result refuse(char *error, size_t size,
                                       const char *fmt, ...) GUEST_PRINTF(3, 4);

static guest__mail_build_result refuse(char *error, size_t size,
                                       const char *fmt, ...)
{
    if (error && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
    }
    return GUEST__MAIL_REFUSED;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Control characters (CR and LF among them) would end the header line or
 * start another: header injection. */
static bool has_control(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* A bare address as SMTP and the headers take it: printable ASCII
 * without the characters that delimit addresses, one '@' with something
 * on both sides. */
static bool address_ok(const char *a, size_t n)
{
    if (n == 0 || n > GUEST__MAIL_ADDR_MAX)
        return false;
    const char *at = memchr(a, '@', n);
    if (!at || at == a || at == a + n - 1 ||
        memchr(at + 1, '@', a + n - at - 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c))
            return false;
    }
    return true;
}

/* Splits "addr" or "Display Name <addr>" (the name may be quoted) into
 * the address and the name (empty when none). */
static bool split_mailbox(const char *field, char *addr, char *name,
                          size_t name_size)
{
    const char *lt = strrchr(field, '<');
    const char *a = field, *end = field + strlen(field);
    name[0] = '\0';
    if (lt) {
        while (end > lt && end[-1] == ' ')
            end--;
        if (end - lt < 2 || end[-1] != '>')
            return false;
        a = lt + 1;
        end--;
        const char *ns = field, *ne = lt;
        while (ns < ne && *ns == ' ')
            ns++;
        while (ne > ns && ne[-1] == ' ')
            ne--;
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
        if ((size_t)(ne - ns) >= name_size)
            return false;
        memcpy(name, ns, (size_t)(ne - ns));
        name[ne - ns] = '\0';
    } else {
        while (*a == ' ')
            a++;
        while (end > a && end[-1] == ' ')
            end--;
    }
    if (!address_ok(a, (size_t)(end - a)))
        return false;
    memcpy(addr, a, (size_t)(end - a));
    addr[end - a] = '\0';
    return true;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(buf *b, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63],
                     i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        put_n(b, q, 4);
    }
}

/* RFC 2047 B encoded-words, folded: each holds at most 39 bytes (a word
 * of 64 characters, so that "Subject: " and the first one fit in 78) and
 * whole UTF-8 characters, as an encoded-word must. */
static void put_encoded_words(buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    bool first = true;
    while (n > 0) {
        size_t take = n < 39 ? n : 39;
        while (take < n && take > 1 && (p[take] & 0xC0) == 0x80)
            take--;
        if (!first)
            put(b, "\r\n ");
        put(b, "=?UTF-8?B?");
        put_base64(b, p, take);
        put(b, "?=");
        first = false;
        p += take;
        n -= take;
    }
}

static bool is_atext_phrase(const char *s)
{
    for (; *s; s++)
        if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') ||
              (*s >= '0' && *s <= '9') || strchr(" !#$%&'*+-/=?^_`{|}~", *s)))
            return false;
    return true;
}

/* "Name <addr>" (the name as atoms, a quoted string or encoded-words), or
 * just the address. */
static void put_mailbox(buf *b, const char *name, const char *addr)
{
    if (*name) {
        if (!is_ascii(name)) {
            put_encoded_words(b, name);
        } else if (is_atext_phrase(name)) {
            put(b, name);
        } else {
            put_c(b, '"');
            for (const char *c = name; *c; c++) {
                if (*c == '"' || *c == '\\')
                    put_c(b, '\\');
                put_c(b, *c);
            }
            put_c(b, '"');
        }
        put(b, " <");
        put(b, addr);
        put_c(b, '>');
    } else {
        put(b, addr);
    }
}

/* Quoted-printable (RFC 2045 6.7), lines of at most 76 characters; CRLF,
 * LF or CR in the text becomes a line break. A '.' that starts a line is
 * encoded too, so that no relay's dot-stuffing can touch the text. */
static void put_qp(buf *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        unsigned char c = *p;
        if (c == '\r' || c == '\n') {
            if (c == '\r' && p[1] == '\n')
                p++;
            put(b, "\r\n");
            col = 0;
            continue;
        }
        bool at_eol = p[1] == '\0' || p[1] == '\r' || p[1] == '\n';
        bool literal =
            (c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) ||
            ((c == ' ' || c == '\t') && !at_eol);
        size_t w = literal ? 1 : 3;
        /* A soft break "=" at column 76 at most; a last character may
         * take column 76 itself. */
        if (col + w > (at_eol ? 76u : 75u)) {
            put(b, "=\r\n");
            col = 0;
            literal = literal && !(c == '.');
            w = literal ? 1 : 3;
        }
        if (literal) {
            put_c(b, (char)c);
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            put_n(b, e, 3);
        }
        col += w;
    }
    if (b->len < 2 || memcmp(b->p + b->len - 2, "\r\n", 2) != 0)
        put(b, "\r\n");
}

static void put_part(buf *b, const char *type, const char *text)
{
    put(b, "Content-Type: ");
    put(b, type);
    put(b, "; charset=UTF-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    put_qp(b, text);
}

static void put_date(buf *b, time_t now)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed",
                                   "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char line[160];
    if (!gmtime_r(&now, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(line, sizeof line,
             "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    put(b, line);
}

static bool message_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 5 || n > 250 || id[0] != '<' || id[n - 1] != '>')
        return false;
    return address_ok(id + 1, n - 2);
}

static bool random_hex(char *out, size_t bytes)
{
    unsigned char r[32];
    if (bytes > sizeof r || getentropy(r, bytes) != 0)
        return false;
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return true;
}

guest__mail_build_result guest__mail_build(const guest_mail *mail, time_t now,
                                           char *from_addr, char *to_addr,
                                           char **out, size_t *out_len,
                                           char *error, size_t error_size)
{
    *out = NULL;
    *out_len = 0;
    if (!mail || !mail->from || !mail->to)
        return refuse(error, error_size, "the mail has no From or To");
    const char *subject = mail->subject ? mail->subject : "";
    if (has_control(mail->from))
        return refuse(error, error_size, "From has a control character");
    if (has_control(mail->to))
        return refuse(error, error_size, "To has a control character");
    if (has_control(subject))
        return refuse(error, error_size,
                      "Subject has a control character (CR or LF?)");
    char from_name[256], to_name[256];
    if (!split_mailbox(mail->from, from_addr, from_name, sizeof from_name))
        return refuse(error, error_size,
                      "From is no ASCII address (Name <user@host> or "
                      "user@host): %.80s",
                      mail->from);
    if (!split_mailbox(mail->to, to_addr, to_name, sizeof to_name))
        return refuse(error, error_size,
                      "To is no ASCII address (Name <user@host> or "
                      "user@host): %.80s",
                      mail->to);
    char made_id[GUEST__MAIL_ADDR_MAX + 80];
    const char *message_id = mail->message_id;
    if (!message_id || !*message_id) {
        char hex[33];
        if (!random_hex(hex, 16))
            return refuse(error, error_size, "no randomness for a Message-ID");
        snprintf(made_id, sizeof made_id, "<%s%s>", hex,
                 strchr(from_addr, '@'));
        message_id = made_id;
    } else if (!message_id_ok(message_id)) {
        return refuse(error, error_size,
                      "the Message-ID is not <left@right> in ASCII: %.80s",
                      message_id);
    }
    char boundary[40] = "=_guestuser_";
    if (mail->html && !random_hex(boundary + strlen(boundary), 12))
        return refuse(error, error_size, "no randomness for a MIME boundary");

    buf b = {0};
    put_date(&b, now);
    put(&b, "From: ");
    put_mailbox(&b, from_name, from_addr);
    put(&b, "\r\nTo: ");
    put_mailbox(&b, to_name, to_addr);
    put(&b, "\r\nSubject: ");
    /* ASCII that looks like an encoded-word is encoded, so that a reader
     * shows it as written. */
    if (is_ascii(subject) && strlen(subject) <= 900 && !strstr(subject, "=?"))
        put(&b, subject);
    else
        put_encoded_words(&b, subject);
    put(&b, "\r\nMessage-ID: ");
    put(&b, message_id);
    /* RFC 3834: no vacation replies to a password reset. */
    put(&b, "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    const char *text = mail->text ? mail->text : "";
    if (mail->html) {
        put(&b, "Content-Type: multipart/alternative; boundary=\"");
        put(&b, boundary);
        put(&b, "\"\r\n\r\n--");
        put(&b, boundary);
        put(&b, "\r\n");
        put_part(&b, "text/plain", text);
        /* The CRLF before a boundary belongs to the boundary (RFC 2046
         * 5.1.1): one more keeps the part's own last line break. */
        put(&b, "\r\n--");
        put(&b, boundary);
        put(&b, "\r\n");
        put_part(&b, "text/html", mail->html);
        put(&b, "\r\n--");
        put(&b, boundary);
        put(&b, "--\r\n");
    } else {
        put_part(&b, "text/plain", text);
    }
    if (b.oom) {
        free(b.p);
        if (error && error_size)
            snprintf(error, error_size, "out of memory building the message");
        return GUEST__MAIL_NOMEM;
    }
    *out = b.p;
    *out_len = b.len;
    return GUEST__MAIL_BUILT;
}
