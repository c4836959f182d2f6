/* Reading a result's columns. Each statement's file names its columns'
 * positions in an enum next to the text, so a reader never counts. */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

int guest__rows(const PGresult *res)
{
    return res ? PQntuples(res) : 0;
}

bool guest__col_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) != 0;
}

/* libpq gives NULL as "", which reads as 0 and as false. */
int64_t guest__col_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool guest__col_bool(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

const char *guest__col_text(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col);
}

void guest__col_copy(const PGresult *res, int row, int col, char *out,
                     size_t size)
{
    if (out && size)
        snprintf(out, size, "%s", PQgetvalue(res, row, col));
}

char *guest__col_dup(const PGresult *res, int row, int col)
{
    return guest__strdup(PQgetvalue(res, row, col));
}
