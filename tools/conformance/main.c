/* guestuser-conformance: runs the conformance checks against a server that
 * mounts the conformance route table. One line per check, a summary line;
 * exit 0 when all passed, 1 when some failed, 2 for a usage error or a
 * server that cannot be reached. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: guestuser-conformance --url URL [options]\n"
        "\n"
        "Checks that a web server adapter for libguestuser passes the\n"
        "library's requests and responses through as they must be. The\n"
        "server must mount the conformance route table\n"
        "(guest_conformance_handler from <guestuser/conformance.h>, library\n"
        "guestuser-conformance) with a context configured by\n"
        "guest_conformance_config(), on an empty path prefix.\n"
        "\n"
        "  --url URL        the server's root, http://HOST[:PORT]/ (plain "
        "HTTP\n"
        "                   only: this client speaks HTTP/1.1 without TLS)\n"
        "  --check NAME     run only this check (may be repeated)\n"
        "  --skip NAME      leave this check out, reported as skipped (may\n"
        "                   be repeated): for what a server library cannot\n"
        "                   do at all, never to hide a defect\n"
        "  --list           list the checks and exit\n"
        "  --timeout SECS   bound on each connect, send and read (30)\n"
        "  --help           this text\n"
        "\n"
        "Prints 'ok   NAME', 'FAIL NAME: why' or 'skip NAME' for each check,\n"
        "then 'N passed, M failed' (', K skipped' when some were). Exit "
        "status: 0 all passed, 1 a check failed,\n"
        "2 usage error or the server cannot be reached.\n"
        "The checks create guests and registered users in the server's\n"
        "database: point it at a test database, never a real site.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"check", required_argument, NULL, 'c'},
        {"skip", required_argument, NULL, 's'},
        {"list", no_argument, NULL, 'l'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    const char *only[64], *skip[64];
    size_t nonly = 0, nskip = 0;
    bool list = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'c':
            if (nonly == sizeof only / sizeof *only) {
                fprintf(stderr, "guestuser-conformance: too many --check\n");
                return 2;
            }
            only[nonly++] = optarg;
            break;
        case 's':
            if (nskip == sizeof skip / sizeof *skip) {
                fprintf(stderr, "guestuser-conformance: too many --skip\n");
                return 2;
            }
            skip[nskip++] = optarg;
            break;
        case 'l':
            list = true;
            break;
        case 't': {
            char *end;
            long s = strtol(optarg, &end, 10);
            if (*end || s < 1 || s > 3600) {
                fprintf(stderr, "guestuser-conformance: --timeout takes 1 to "
                                "3600 seconds\n");
                return 2;
            }
            cf_timeout_ms = (int)s * 1000;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    size_t count;
    const cf_check *checks = cf_checks(&count);
    if (list) {
        for (size_t i = 0; i < count; i++)
            printf("%-26s %s\n", checks[i].name, checks[i].what);
        return 0;
    }
    if (optind < argc || !url) {
        fprintf(stderr, "guestuser-conformance: %s\n",
                url ? "unexpected arguments" : "--url is required");
        usage(stderr);
        return 2;
    }
    for (size_t k = 0; k < nonly + nskip; k++) {
        const char *name = k < nonly ? only[k] : skip[k - nonly];
        size_t i = 0;
        while (i < count && strcmp(checks[i].name, name))
            i++;
        if (i == count) {
            fprintf(stderr,
                    "guestuser-conformance: no check named '%s' (--list)\n",
                    name);
            return 2;
        }
    }
    cf_target t;
    char why[1024];
    if (!cf_parse_url(url, &t, why, sizeof why)) {
        fprintf(stderr, "guestuser-conformance: %s\n", why);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = cf_connect(&t, why, sizeof why);
    if (fd < 0) {
        fprintf(stderr, "guestuser-conformance: %s\n", why);
        return 2;
    }
    close(fd);

    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < count; i++) {
        bool wanted = nonly == 0;
        for (size_t k = 0; k < nonly; k++)
            wanted |= !strcmp(checks[i].name, only[k]);
        if (!wanted)
            continue;
        bool skipping = false;
        for (size_t k = 0; k < nskip; k++)
            skipping |= !strcmp(checks[i].name, skip[k]);
        if (skipping) {
            printf("skip %s\n", checks[i].name);
            skipped++;
            continue;
        }
        why[0] = '\0';
        bool ok = checks[i].run(&t, why, sizeof why);
        cf_checks_release();
        if (ok && why[0]) {
            /* a passing check's figures */
            printf("ok   %s (%s)\n", checks[i].name, why);
            passed++;
        } else if (ok) {
            printf("ok   %s\n", checks[i].name);
            passed++;
        } else {
            printf("FAIL %s: %s\n", checks[i].name,
                   why[0] ? why : "(no reason)");
            failed++;
        }
        fflush(stdout);
    }
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
