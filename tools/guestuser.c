/* guestuser: the command-line admin tool (migrate, stats, list-guests,
 * delete-expired, create-user, list-users, delete-user, set-password,
 * deactivate, activate, list-identities, unlink-identity, rate-limits,
 * mail-queue, mail-retry). Exit
 * status: 0 success, 1 usage error or refused input (an unknown user too), 2
 * database (or other runtime) error, 130 interrupted. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <guestuser/guestuser.h>

enum { EXIT_USAGE = 1, EXIT_DB = 2, EXIT_INTERRUPTED = 130 };

/* Each option, the commands that accept it and whether it takes a value. */
enum {
    CMD_MIGRATE = 1 << 0,
    CMD_STATS = 1 << 1,
    CMD_LIST = 1 << 2,
    CMD_DELETE = 1 << 3,
    CMD_CREATE = 1 << 4,
    CMD_LIST_USERS = 1 << 5,
    CMD_DELETE_USER = 1 << 6,
    CMD_SET_PASSWORD = 1 << 7,
    CMD_DEACTIVATE = 1 << 8,
    CMD_ACTIVATE = 1 << 9,
    CMD_LIST_IDENTITIES = 1 << 10,
    CMD_UNLINK_IDENTITY = 1 << 11,
    CMD_RATE_LIMITS = 1 << 12,
    CMD_MAIL_QUEUE = 1 << 13,
    CMD_MAIL_RETRY = 1 << 14,
    CMD_ALL = 0x7FFF,
    /* The commands that take one USERNAME. */
    CMD_NAMED = CMD_CREATE | CMD_DELETE_USER | CMD_SET_PASSWORD |
                CMD_DEACTIVATE | CMD_ACTIVATE
};

typedef struct command {
    const char *name;
    unsigned bit;
    const char *synopsis;
    const char *help;
} command;

static const command commands[] = {
    {"migrate", CMD_MIGRATE, "migrate",
     "Create or upgrade the schema. Every other command only uses a schema\n"
     "that migrate brought to this version, and exits 2 otherwise."},
    {"stats", CMD_STATS, "stats [--max-age SECONDS]",
     "Count users, guests, expired guests and live sessions."},
    {"list-guests", CMD_LIST,
     "list-guests [--expired] [--limit N] [--max-age SECONDS]",
     "List guests newest first: username, created_at (UTC), expired.\n"
     "  --expired          only guests that have expired\n"
     "  --limit N          at most N guests (50); 0 lists all"},
    {"delete-expired", CMD_DELETE,
     "delete-expired [--dry-run] [--max-age SECONDS] [--batch-size N] "
     "[--progress]",
     "Delete expired guests (everything referencing them cascades), then\n"
     "expired sessions, in batches of one short transaction each. Safe to\n"
     "run on several nodes at once. The last line on standard output is\n"
     "`deleted: N`, or with --dry-run `would delete: N`.\n"
     "  --dry-run          count what would be deleted, delete nothing\n"
     "  --batch-size N     users (and sessions) per transaction, 1..100000 "
     "(1000)\n"
     "  --progress         report each batch on standard error (a live line\n"
     "                     on a terminal)\n"
     "  Ctrl-C stops between batches; what was deleted stays deleted."},
    {"create-user", CMD_CREATE,
     "create-user [--password-iterations N] USERNAME",
     "Create a registered user. The password is the first line of standard\n"
     "input (asked for without echo on a terminal) and must pass the same\n"
     "checks as conversion; a refused username or password exits 1.\n"
     "  --password-iterations N  PBKDF2 iterations of the hash (the site's)"},
    {"list-users", CMD_LIST_USERS,
     "list-users [--guests|--registered] [--limit N] [--max-age SECONDS]",
     "List users newest first: username, kind (guest or registered),\n"
     "active, date_joined, last_login and a guest's expires_at (UTC; - for\n"
     "none).\n"
     "  --guests           only guests\n"
     "  --registered       only registered users\n"
     "  --limit N          at most N users (50); 0 lists all"},
    {"delete-user", CMD_DELETE_USER, "delete-user USERNAME",
     "Delete a user, guest or registered, with its sessions and every row\n"
     "of yours whose foreign key says ON DELETE CASCADE. An unknown user\n"
     "exits 1."},
    {"set-password", CMD_SET_PASSWORD,
     "set-password [--password-iterations N] USERNAME",
     "Set a registered user's password and log the user out everywhere.\n"
     "The password is the first line of standard input (asked for without\n"
     "echo on a terminal) and must pass the password checks; a refused\n"
     "password, a guest or an unknown user exits 1.\n"
     "  --password-iterations N  PBKDF2 iterations of the hash (the site's)"},
    {"deactivate", CMD_DEACTIVATE, "deactivate USERNAME",
     "Deactivate a user: its sessions end at once and it cannot log in\n"
     "until activated again. An unknown user exits 1."},
    {"activate", CMD_ACTIVATE, "activate USERNAME",
     "Activate a deactivated user, so it can log in again. An unknown user\n"
     "exits 1."},
    {"list-identities", CMD_LIST_IDENTITIES, "list-identities USERNAME",
     "List the identity-provider identities linked to a user, oldest first:\n"
     "issuer, subject, e-mail (- for none), verified, linked_at and\n"
     "last_login (UTC; - for never). An unknown user exits 1."},
    {"unlink-identity", CMD_UNLINK_IDENTITY,
     "unlink-identity USERNAME ISSUER SUBJECT",
     "Unlink an identity from a user, unless it is the user's only way to\n"
     "log in (no usable password and no other identity): that, an unknown\n"
     "user or an identity the user does not have exits 1."},
    {"rate-limits", CMD_RATE_LIMITS, "rate-limits list [--limit N] | reset WHO",
     "list: the abuse limits' counters that still count, highest first:\n"
     "kind (guest, login, login_user, convert), client (an address, an IPv6\n"
     "prefix or unknown), count in the window, window seconds, stale_at.\n"
     "reset WHO: lift a lock-out on every node at once. WHO is an IP address\n"
     "(its counters, and for IPv6 its /64, /56 and /48), a client as listed,\n"
     "or a username (its failed-login counters from every address). The last\n"
     "line is `reset: N counters`.\n"
     "  --limit N          list at most N counters (50); 0 lists all"},
    {"mail-queue", CMD_MAIL_QUEUE, "mail-queue [--limit N]",
     "List the mails not delivered yet, oldest first: id, pending or\n"
     "failed, attempts, created_at, next attempt (UTC), to, subject, last\n"
     "error.\n"
     "  --limit N          at most N mails (50); 0 lists all"},
    {"mail-retry", CMD_MAIL_RETRY, "mail-retry",
     "Queue every failed mail again (after the mail server was fixed); the\n"
     "senders deliver them at their next pass. The last line is\n"
     "`requeued: N`."},
};

#define NCOMMANDS (sizeof commands / sizeof *commands)

typedef struct option {
    const char *name;
    unsigned commands;
    bool takes_value;
} option;

enum {
    OPT_DB,
    OPT_SCHEMA,
    OPT_TIMEOUT,
    OPT_HELP,
    OPT_VERSION,
    OPT_MAX_AGE,
    OPT_EXPIRED,
    OPT_LIMIT,
    OPT_DRY_RUN,
    OPT_BATCH_SIZE,
    OPT_PROGRESS,
    OPT_GUESTS,
    OPT_REGISTERED,
    OPT_ITERATIONS,
    OPT_COUNT
};

static const option options[OPT_COUNT] = {
    [OPT_DB] = {"db", CMD_ALL, true},
    [OPT_SCHEMA] = {"schema", CMD_ALL, true},
    [OPT_TIMEOUT] = {"timeout", CMD_ALL, true},
    [OPT_HELP] = {"help", CMD_ALL, false},
    [OPT_VERSION] = {"version", CMD_ALL, false},
    [OPT_MAX_AGE] = {"max-age",
                     CMD_STATS | CMD_LIST | CMD_DELETE | CMD_LIST_USERS, true},
    [OPT_EXPIRED] = {"expired", CMD_LIST, false},
    [OPT_LIMIT] = {"limit",
                   CMD_LIST | CMD_LIST_USERS | CMD_RATE_LIMITS | CMD_MAIL_QUEUE,
                   true},
    [OPT_DRY_RUN] = {"dry-run", CMD_DELETE, false},
    [OPT_BATCH_SIZE] = {"batch-size", CMD_DELETE, true},
    [OPT_PROGRESS] = {"progress", CMD_DELETE, false},
    [OPT_GUESTS] = {"guests", CMD_LIST_USERS, false},
    [OPT_REGISTERED] = {"registered", CMD_LIST_USERS, false},
    [OPT_ITERATIONS] = {"password-iterations", CMD_CREATE | CMD_SET_PASSWORD,
                        true},
};

typedef struct args {
    const command *cmd;
    const char *positional[4];
    int npositional;
    bool seen[OPT_COUNT];
    const char *value[OPT_COUNT];
    /* parsed values */
    long long timeout_s, max_age, limit, batch_size, iterations;
} args;

static void print_usage(FILE *out, const command *only)
{
    if (only) {
        fprintf(out,
                "Usage: guestuser [--db CONNINFO] [--schema NAME] %s\n\n"
                "%s\n",
                only->synopsis, only->help);
        fputs("\nRun `guestuser --help` for the options every command "
              "takes.\n",
              out);
        return;
    }
    fputs("Usage: guestuser [--db CONNINFO] [--schema NAME] "
          "[--timeout SECONDS] COMMAND [OPTIONS]\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].synopsis);
    fputs("\nOptions (before or after the command):\n"
          "  --db CONNINFO      libpq connection string or URI; default: "
          "$GUESTUSER_DB,\n"
          "                     else libpq's PGHOST, PGDATABASE... "
          "environment\n"
          "  --schema NAME      schema of the library's tables; default: "
          "$GUESTUSER_SCHEMA,\n"
          "                     else guestuser\n"
          "  --timeout SECONDS  limit for connecting and for each statement "
          "(30)\n"
          "  --max-age SECONDS  guests older than this are expired; default: "
          "$GUESTUSER_MAX_AGE,\n"
          "                     else the max_age the site recorded in the "
          "schema\n"
          "                     (1209600, two weeks, when none)\n"
          "  --password-iterations N\n"
          "                     create-user, set-password: PBKDF2-SHA256 "
          "iterations of\n"
          "                     the new hash, 1..2147483647; default: the "
          "count the\n"
          "                     site recorded in the schema (1500000 when "
          "none)\n"
          "\nEnvironment: GUESTUSER_DB, GUESTUSER_SCHEMA, GUESTUSER_MAX_AGE,\n"
          "GUESTUSER_PASSWORD_ITERATIONS, GUESTUSER_DB_TIMEOUT_MS "
          "(guest_config_from_env()).\n"
          "  --help             this text; after a command, that command's\n"
          "  --version          the version, then exit\n"
          "\nExit status: 0 success, 1 usage error, 2 database error, 130 "
          "interrupted.\n",
          out);
}

/* Reports a usage error: the message, then the usage text, exit 1. */
static int usage_error(const command *cmd, const char *fmt, ...)
    GUEST_PRINTF(2, 3);
static int usage_error(const command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("guestuser: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    print_usage(stderr, cmd);
    return EXIT_USAGE;
}

static bool parse_number(const char *s, long long min, long long max,
                         long long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* Returns -1 when the arguments are fine, else the exit status. */
static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->timeout_s = 30;
    a->limit = 50;
    a->batch_size = GUEST_CLEANUP_BATCH_DEFAULT;
    bool options_done = false;
    const char *unknown_cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && (!strcmp(arg, "-h") || !strcmp(arg, "-?"))) {
            a->seen[OPT_HELP] = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int o = 0;
            while (o < OPT_COUNT && (strlen(options[o].name) != len ||
                                     strncmp(options[o].name, name, len)))
                o++;
            if (o == OPT_COUNT)
                return usage_error(a->cmd, "unknown option %s", arg);
            if (options[o].takes_value) {
                if (eq) {
                    a->value[o] = eq + 1;
                } else if (i + 1 < argc) {
                    a->value[o] = argv[++i];
                } else {
                    return usage_error(a->cmd, "option --%s needs a value",
                                       options[o].name);
                }
            } else if (eq) {
                return usage_error(a->cmd, "option --%s takes no value",
                                   options[o].name);
            }
            a->seen[o] = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0')
            return usage_error(a->cmd, "unknown option %s", arg);
        if (!a->cmd && !unknown_cmd) {
            a->cmd = find_command(arg);
            if (!a->cmd)
                unknown_cmd = arg;
            continue;
        }
        if (a->npositional ==
            (int)(sizeof a->positional / sizeof *a->positional))
            return usage_error(a->cmd, "too many arguments");
        a->positional[a->npositional++] = arg;
    }

    if (a->seen[OPT_HELP] && !unknown_cmd) {
        print_usage(stdout, a->cmd);
        return EXIT_SUCCESS;
    }
    if (a->seen[OPT_VERSION]) {
        /* The headers it was built with and the library it runs with: a
         * mismatch there is worth seeing. */
        printf("guestuser %s (libguestuser %s)\n", GUESTUSER_VERSION_STRING,
               guest_version());
        return EXIT_SUCCESS;
    }
    if (unknown_cmd)
        return usage_error(NULL, "unknown command \"%s\"", unknown_cmd);
    if (!a->cmd)
        return usage_error(NULL, "no command given");
    for (int o = 0; o < OPT_COUNT; o++)
        if (a->seen[o] && !(options[o].commands & a->cmd->bit))
            return usage_error(a->cmd, "%s does not take --%s", a->cmd->name,
                               options[o].name);
    int want = a->cmd->bit & (CMD_NAMED | CMD_LIST_IDENTITIES) ? 1
               : a->cmd->bit == CMD_UNLINK_IDENTITY            ? 3
                                                               : 0;
    if (a->cmd->bit == CMD_RATE_LIMITS) {
        bool list = a->npositional == 1 && !strcmp(a->positional[0], "list");
        bool reset = a->npositional == 2 && !strcmp(a->positional[0], "reset");
        if (!list && !reset)
            return usage_error(a->cmd, "rate-limits needs list, or reset WHO");
        if (reset && a->seen[OPT_LIMIT])
            return usage_error(a->cmd, "rate-limits reset does not take "
                                       "--limit");
        want = a->npositional;
    }
    if (a->npositional != want)
        return usage_error(a->cmd,
                           want == 3   ? "%s needs USERNAME ISSUER SUBJECT"
                           : want == 1 ? "%s needs exactly one USERNAME"
                                       : "%s takes no arguments",
                           a->cmd->name);
    if (a->seen[OPT_GUESTS] && a->seen[OPT_REGISTERED])
        return usage_error(a->cmd,
                           "--guests and --registered exclude each other");
    if (a->seen[OPT_TIMEOUT] &&
        !parse_number(a->value[OPT_TIMEOUT], 1, 86400, &a->timeout_s))
        return usage_error(a->cmd,
                           "--timeout must be 1..86400 seconds (got \"%s\")",
                           a->value[OPT_TIMEOUT]);
    if (a->seen[OPT_MAX_AGE] &&
        !parse_number(a->value[OPT_MAX_AGE], 1, INT64_MAX, &a->max_age))
        return usage_error(a->cmd,
                           "--max-age must be a positive number of seconds "
                           "(got \"%s\")",
                           a->value[OPT_MAX_AGE]);
    if (a->seen[OPT_LIMIT] &&
        !parse_number(a->value[OPT_LIMIT], 0, INT64_MAX, &a->limit))
        return usage_error(a->cmd,
                           "--limit must be a number, 0 or more (got \"%s\")",
                           a->value[OPT_LIMIT]);
    if (a->seen[OPT_ITERATIONS] &&
        !parse_number(a->value[OPT_ITERATIONS], 1, INT_MAX, &a->iterations))
        return usage_error(a->cmd,
                           "--password-iterations must be 1..%d (got \"%s\")",
                           INT_MAX, a->value[OPT_ITERATIONS]);
    if (a->seen[OPT_BATCH_SIZE] &&
        !parse_number(a->value[OPT_BATCH_SIZE], 1, GUEST_CLEANUP_BATCH_MAX,
                      &a->batch_size))
        return usage_error(a->cmd, "--batch-size must be 1..%u (got \"%s\")",
                           GUEST_CLEANUP_BATCH_MAX, a->value[OPT_BATCH_SIZE]);
    return -1;
}

static int db_error(const char *what, guest_status st, const guest_error *err)
{
    fprintf(stderr, "guestuser: %s: %s: %s\n", what, guest_strerror(st),
            err->message);
    return EXIT_DB;
}

static void format_utc(int64_t unix_s, char *buf, size_t size)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "@%" PRId64, unix_s);
}

static int cmd_migrate(guest_ctx *ctx)
{
    printf("migrate: schema \"%s\" is up to date\n",
           guest_ctx_config(ctx)->db_schema);
    return EXIT_SUCCESS;
}

static int cmd_stats(guest_ctx *ctx, const args *a)
{
    guest_stats s;
    guest_error err = {0};
    guest_status st = guest_stats_get(ctx, a->max_age, &s, &err);
    if (st != GUEST_OK)
        return db_error("stats", st, &err);
    printf("users: %" PRIu64 "\n"
           "guests: %" PRIu64 "\n"
           "expired guests: %" PRIu64 "\n"
           "live sessions: %" PRIu64 "\n",
           s.users, s.guests, s.expired_guests, s.live_sessions);
    return EXIT_SUCCESS;
}

static bool print_guest(const guest_info *g, void *userdata)
{
    (void)userdata;
    char when[32];
    format_utc(g->created_at, when, sizeof when);
    /* A name from a custom generator could hold a tab or newline; it must
     * not break the one-line-per-guest format. */
    for (const unsigned char *p = (const unsigned char *)g->username; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
    printf("\t%s\t%s\n", when, g->expired ? "yes" : "no");
    return true;
}

static int cmd_list(guest_ctx *ctx, const args *a)
{
    guest_error err = {0};
    printf("username\tcreated_at\texpired\n");
    guest_status st =
        guest_guests_list(ctx, a->seen[OPT_EXPIRED], a->max_age,
                          (size_t)a->limit, print_guest, NULL, &err);
    if (st != GUEST_OK)
        return db_error("list-guests", st, &err);
    return EXIT_SUCCESS;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct progress_state {
    bool show;
    bool tty;
    bool printed;
} progress_state;

static bool on_progress(const guest_cleanup_result *r, void *userdata)
{
    progress_state *p = userdata;
    if (p->show) {
        fprintf(stderr,
                "%sbatch %" PRIu64 ": %" PRIu64 " guests, %" PRIu64
                " expired sessions deleted%s",
                p->tty ? "\r\033[K" : "", r->batches, r->users_deleted,
                r->sessions_deleted, p->tty ? "" : "\n");
        fflush(stderr);
        p->printed = true;
    }
    return !interrupted;
}

static int cmd_delete(guest_ctx *ctx, const args *a)
{
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.max_age = a->max_age;
    o.batch_size = (unsigned)a->batch_size;
    o.dry_run = a->seen[OPT_DRY_RUN];
    progress_state p = {.show = a->seen[OPT_PROGRESS],
                        .tty = isatty(STDERR_FILENO) == 1};
    o.progress = on_progress;
    o.progress_userdata = &p;

    /* Ctrl-C or a TERM from the scheduler stops between batches, so every
     * finished batch is counted; a second Ctrl-C kills at once. */
    struct sigaction sa = {.sa_handler = on_signal,
                           .sa_flags = (int)SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    guest_cleanup_result r;
    guest_error err = {0};
    guest_status st = guest_delete_expired(ctx, &o, &r, &err);
    if (p.printed && p.tty)
        fputc('\n', stderr);
    if (st != GUEST_OK && st != GUEST_ERR_CANCELLED && o.dry_run)
        return db_error("delete-expired", st, &err);

    char when[32];
    format_utc(r.cutoff, when, sizeof when);
    printf("cutoff: guests created before %s\n", when);
    if (o.dry_run) {
        printf("expired sessions: %" PRIu64 "\n", r.sessions_deleted);
        printf("stale rate windows: %" PRIu64 "\n", r.rate_windows_deleted);
        printf("would delete: %" PRIu64 "\n", r.users_deleted);
    } else {
        /* Printed on failure too: the finished batches are committed. */
        printf("batches: %" PRIu64 "\n", r.batches);
        printf("expired sessions deleted: %" PRIu64 "\n", r.sessions_deleted);
        printf("stale rate windows deleted: %" PRIu64 "\n",
               r.rate_windows_deleted);
        printf("deleted: %" PRIu64 "\n", r.users_deleted);
    }
    fflush(stdout);
    if (st == GUEST_ERR_CANCELLED) {
        fputs("guestuser: interrupted; run again to finish\n", stderr);
        return EXIT_INTERRUPTED;
    }
    if (st != GUEST_OK)
        return db_error("delete-expired", st, &err);
    return EXIT_SUCCESS;
}

/* The longest password line accepted, in bytes. */
#define PASSWORD_MAX 4096

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Ctrl-C at the password prompt must not leave the terminal without echo. */
static void restore_tty_and_die(int sig)
{
    if (tty_changed)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads the first line of standard input, without echo when it is a
 * terminal. Returns NULL (having said why) when there is none. */
static char *read_password(const char *cmd_name)
{
    bool tty = isatty(STDIN_FILENO) == 1;
    if (tty) {
        fputs("Password: ", stderr);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
            signal(SIGINT, restore_tty_and_die);
            signal(SIGTERM, restore_tty_and_die);
            struct termios t = saved_tty;
            t.c_lflag &= ~(tcflag_t)ECHO;
            tty_changed = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        tty_changed = 0;
        fputc('\n', stderr);
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = '\0';
    /* A NUL inside the line would silently cut the password short (the
     * web forms refuse one too). */
    bool has_nul = n > 0 && strlen(line) != (size_t)n;
    if (n < 0 || n > PASSWORD_MAX || has_nul) {
        fprintf(stderr, "guestuser: %s: %s\n", cmd_name,
                n < 0     ? "no password on standard input (give it as the "
                            "first line)"
                : has_nul ? "the password contains a NUL byte"
                          : "the password is longer than 4096 bytes");
        if (line)
            explicit_bzero(line, cap);
        free(line);
        return NULL;
    }
    return line;
}

static int cmd_create_user(guest_ctx *ctx, const args *a)
{
    const char *username = a->positional[0];
    char *password = read_password("create-user");
    if (!password)
        return EXIT_USAGE;
    int64_t id = 0;
    guest_form_errors errors = {0};
    guest_status st =
        guest_user_create(ctx, username, password, &id, &errors, NULL);
    explicit_bzero(password, strlen(password));
    free(password);
    if (st == GUEST_OK) {
        printf("created user %s (id %" PRId64 ")\n", username, id);
        return EXIT_SUCCESS;
    }
    if (st == GUEST_ERR_VALIDATION || st == GUEST_ERR_USERNAME_TAKEN) {
        for (size_t i = 0; i < errors.count; i++)
            fprintf(stderr, "guestuser: %s: %s\n", errors.items[i].field,
                    errors.items[i].message);
        return EXIT_USAGE;
    }
    fprintf(stderr, "guestuser: create-user: %s\n", guest_strerror(st));
    return EXIT_DB;
}

/* Warnings and errors only: cron mails whatever reaches standard error,
 * and news such as a connection pooler detected is not worth a mail. An
 * unreachable database is left out too: the command reports it itself,
 * with its exit status. */
static void log_quietly(guest_log_level level, const char *message,
                        void *userdata)
{
    (void)userdata;
    if (level != GUEST_LOG_INFO &&
        strncmp(message, "database unavailable: ", 22) != 0)
        fprintf(stderr, "guestuser: %s: %s\n",
                level == GUEST_LOG_ERROR ? "error" : "warning", message);
}

/* A user's name on one line of output: a tab or newline in it (a custom
 * name generator's) must not break the format. */
static void print_name(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static void print_time(int64_t unix_s)
{
    char when[32];
    if (unix_s)
        format_utc(unix_s, when, sizeof when);
    printf("\t%s", unix_s ? when : "-");
}

static bool print_user(const guest_user_info *u, void *userdata)
{
    (void)userdata;
    print_name(u->username);
    printf("\t%s\t%s", u->is_guest ? "guest" : "registered",
           u->is_active ? "yes" : "no");
    print_time(u->date_joined);
    print_time(u->last_login);
    print_time(u->expires_at);
    putchar('\n');
    return true;
}

static int cmd_list_users(guest_ctx *ctx, const args *a)
{
    guest_user_kind kind = a->seen[OPT_GUESTS]       ? GUEST_USERS_GUESTS
                           : a->seen[OPT_REGISTERED] ? GUEST_USERS_REGISTERED
                                                     : GUEST_USERS_ALL;
    guest_error err = {0};
    printf("username\tkind\tactive\tdate_joined\tlast_login\texpires_at\n");
    guest_status st =
        guest_users_list(ctx, kind, (size_t)a->limit, print_user, NULL, &err);
    if (st != GUEST_OK)
        return db_error("list-users", st, &err);
    return EXIT_SUCCESS;
}

/* The exit status of a command on one user: an unknown user is refused
 * input (1), like a bad password; the rest is the database's (2). */
static int user_error(const char *cmd_name, guest_status st,
                      const guest_error *err)
{
    if (st == GUEST_ERR_NOT_FOUND || st == GUEST_ERR_INVALID) {
        fprintf(stderr, "guestuser: %s: %s\n", cmd_name, err->message);
        return EXIT_USAGE;
    }
    return db_error(cmd_name, st, err);
}

static int cmd_delete_user(guest_ctx *ctx, const args *a)
{
    const char *username = a->positional[0];
    int64_t id = 0;
    guest_error err = {0};
    guest_status st = guest_user_delete(ctx, username, &id, &err);
    if (st != GUEST_OK)
        return user_error("delete-user", st, &err);
    printf("deleted user ");
    print_name(username);
    printf(" (id %" PRId64 ")\n", id);
    return EXIT_SUCCESS;
}

static int cmd_set_password(guest_ctx *ctx, const args *a)
{
    const char *username = a->positional[0];
    char *password = read_password("set-password");
    if (!password)
        return EXIT_USAGE;
    guest_form_errors errors = {0};
    guest_error err = {0};
    guest_status st =
        guest_user_set_password(ctx, username, password, &errors, &err);
    explicit_bzero(password, strlen(password));
    free(password);
    if (st == GUEST_OK) {
        printf("password changed for user ");
        print_name(username);
        putchar('\n');
        return EXIT_SUCCESS;
    }
    if (st == GUEST_ERR_VALIDATION) {
        for (size_t i = 0; i < errors.count; i++)
            fprintf(stderr, "guestuser: %s: %s\n", errors.items[i].field,
                    errors.items[i].message);
        return EXIT_USAGE;
    }
    if (st == GUEST_ERR_BUSY || st == GUEST_ERR_CONFIG) {
        fprintf(stderr, "guestuser: set-password: %s\n", guest_strerror(st));
        return EXIT_DB;
    }
    return user_error("set-password", st, &err);
}

static int cmd_set_active(guest_ctx *ctx, const args *a, bool active)
{
    const char *username = a->positional[0];
    const char *cmd_name = active ? "activate" : "deactivate";
    guest_error err = {0};
    guest_status st = guest_user_set_active(ctx, username, active, &err);
    if (st != GUEST_OK)
        return user_error(cmd_name, st, &err);
    printf("%s user ", active ? "activated" : "deactivated");
    print_name(username);
    putchar('\n');
    return EXIT_SUCCESS;
}

static bool print_identity(const guest_identity_info *i, void *userdata)
{
    (void)userdata;
    print_name(i->issuer);
    putchar('\t');
    print_name(i->subject);
    putchar('\t');
    print_name(*i->email ? i->email : "-");
    printf("\t%s", i->email_verified ? "verified" : "unverified");
    print_time(i->linked_at);
    print_time(i->last_login);
    putchar('\n');
    return true;
}

static bool print_rate_limit(const guest_rate_limit_info *r, void *userdata)
{
    (void)userdata;
    printf("%s\t", r->kind);
    print_name(r->client);
    printf("\t%.1f\t%u", r->count, r->window_s);
    print_time(r->stale_at);
    putchar('\n');
    return true;
}

static int cmd_rate_limits(guest_ctx *ctx, const args *a)
{
    guest_error err = {0};
    if (!strcmp(a->positional[0], "list")) {
        guest_status st = guest_rate_limits_list(
            ctx, a->seen[OPT_LIMIT] ? (size_t)a->limit : 50, print_rate_limit,
            NULL, &err);
        return st == GUEST_OK ? EXIT_SUCCESS
                              : db_error("rate-limits list", st, &err);
    }
    uint64_t n = 0;
    guest_status st = guest_rate_limits_reset(ctx, a->positional[1], &n, &err);
    if (st != GUEST_OK)
        return db_error("rate-limits reset", st, &err);
    printf("reset: %" PRIu64 " counters\n", n);
    return EXIT_SUCCESS;
}

static bool print_mail(const guest_mail_info *m, void *userdata)
{
    (void)userdata;
    printf("%" PRId64 "\t%s\t%d", m->id, m->failed ? "failed" : "pending",
           m->attempts);
    print_time(m->created_at);
    if (m->failed)
        printf("\t-");
    else
        print_time(m->next_attempt_at);
    putchar('\t');
    print_name(m->to);
    putchar('\t');
    print_name(m->subject);
    putchar('\t');
    print_name(*m->last_error ? m->last_error : "-");
    putchar('\n');
    return true;
}

static int cmd_mail(guest_ctx *ctx, const args *a)
{
    guest_error err = {0};
    if (a->cmd->bit == CMD_MAIL_QUEUE) {
        guest_status st = guest_mail_queue_list(
            ctx, a->seen[OPT_LIMIT] ? (size_t)a->limit : 50, print_mail, NULL,
            &err);
        return st == GUEST_OK ? EXIT_SUCCESS : db_error("mail-queue", st, &err);
    }
    uint64_t n = 0;
    guest_status st = guest_mail_retry_failed(ctx, &n, &err);
    if (st != GUEST_OK)
        return db_error("mail-retry", st, &err);
    printf("requeued: %" PRIu64 "\n", n);
    return EXIT_SUCCESS;
}

static int cmd_identities(guest_ctx *ctx, const args *a)
{
    const char *cmd_name = a->cmd->name;
    int64_t id;
    guest_error err = {0};
    guest_status st = guest_user_lookup(ctx, a->positional[0], &id, NULL, &err);
    if (st == GUEST_OK && a->cmd->bit == CMD_LIST_IDENTITIES)
        st = guest_identities_list(ctx, id, print_identity, NULL, &err);
    else if (st == GUEST_OK)
        st = guest_identity_unlink(ctx, id, a->positional[1], a->positional[2],
                                   &err);
    if (st == GUEST_ERR_LAST_LOGIN) {
        fprintf(stderr, "guestuser: %s: %s\n", cmd_name, err.message);
        return EXIT_USAGE;
    }
    if (st != GUEST_OK)
        return user_error(cmd_name, st, &err);
    if (a->cmd->bit == CMD_UNLINK_IDENTITY) {
        printf("unlinked ");
        print_name(a->positional[1]);
        putchar(' ');
        print_name(a->positional[2]);
        printf(" from user ");
        print_name(a->positional[0]);
        putchar('\n');
    }
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;

    /* No PGOPTIONS of ours: the library keeps server notices off standard
     * error itself, and a transaction-mode pooler such as PgBouncer refuses
     * the startup option it would become. */
    guest_config cfg;
    guest_config_init(&cfg);
    /* The age and the hashing cost: the site's, recorded in its schema
     * (0), unless the environment or a flag says otherwise. */
    cfg.max_age = 0;
    cfg.password_iterations = 0;
    guest_error env_err = {0};
    if (guest_config_from_env(&cfg, &env_err) != GUEST_OK)
        return usage_error(a.cmd, "%s", env_err.message);
    if (a.seen[OPT_DB])
        cfg.db_conninfo = a.value[OPT_DB];
    if (a.seen[OPT_SCHEMA])
        cfg.db_schema = a.value[OPT_SCHEMA];
    cfg.db_pool_size = 1;
    if (a.seen[OPT_TIMEOUT] || !getenv("GUESTUSER_DB_TIMEOUT_MS"))
        cfg.db_timeout_ms = (unsigned)(a.timeout_s * 1000);
    cfg.log = log_quietly;
    /* Only migrate may create or alter the schema: a mistyped --schema
     * must be an error, not a new empty schema. */
    cfg.auto_migrate = a.cmd->bit == CMD_MIGRATE;
    /* A guest's expiry, which list-users shows, is its age plus this. */
    if (a.seen[OPT_MAX_AGE])
        cfg.max_age = a.max_age;
    /* Without the flag, the count the site recorded in the schema: hashes
     * dearer than the site's would make every refused login cost more
     * (docs/accounts.md). */
    if (a.seen[OPT_ITERATIONS])
        cfg.password_iterations = (unsigned)a.iterations;

    guest_ctx *ctx = NULL;
    guest_error err = {0};
    guest_status st = guest_ctx_new(&cfg, &ctx, &err);
    if (st == GUEST_ERR_CONFIG)
        return usage_error(a.cmd, "%s", err.message);
    if (st == GUEST_ERR_DB && !cfg.auto_migrate) {
        /* The schema is missing or at another version: the message says
         * which and what to run. */
        fprintf(stderr, "guestuser: %s: %s\n", a.cmd->name, err.message);
        return EXIT_DB;
    }
    if (st != GUEST_OK)
        return db_error("cannot open the database", st, &err);

    switch (a.cmd->bit) {
    case CMD_MIGRATE:
        rc = cmd_migrate(ctx);
        break;
    case CMD_STATS:
        rc = cmd_stats(ctx, &a);
        break;
    case CMD_LIST:
        rc = cmd_list(ctx, &a);
        break;
    case CMD_DELETE:
        rc = cmd_delete(ctx, &a);
        break;
    case CMD_CREATE:
        rc = cmd_create_user(ctx, &a);
        break;
    case CMD_LIST_USERS:
        rc = cmd_list_users(ctx, &a);
        break;
    case CMD_DELETE_USER:
        rc = cmd_delete_user(ctx, &a);
        break;
    case CMD_SET_PASSWORD:
        rc = cmd_set_password(ctx, &a);
        break;
    case CMD_LIST_IDENTITIES:
    case CMD_UNLINK_IDENTITY:
        rc = cmd_identities(ctx, &a);
        break;
    case CMD_RATE_LIMITS:
        rc = cmd_rate_limits(ctx, &a);
        break;
    case CMD_MAIL_QUEUE:
    case CMD_MAIL_RETRY:
        rc = cmd_mail(ctx, &a);
        break;
    default:
        rc = cmd_set_active(ctx, &a, a.cmd->bit == CMD_ACTIVATE);
        break;
    }
    guest_ctx_free(ctx);
    return rc;
}
