/* Submitted forms: urlencoded bodies and query strings, and JSON objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "accounts/accounts.h"

typedef struct field {
    char *name;
    char *value;
    size_t len;
} field;

struct guest_form {
    field *fields;
    size_t count;
    size_t cap;
};

void guest_form_free(guest_form *form)
{
    if (!form)
        return;
    for (size_t i = 0; i < form->count; i++) {
        free(form->fields[i].name);
        free(form->fields[i].value);
    }
    free(form->fields);
    free(form);
}

static const field *find(const guest_form *form, const char *name)
{
    if (!form || !name)
        return NULL;
    for (size_t i = 0; i < form->count; i++)
        if (!strcmp(form->fields[i].name, name))
            return &form->fields[i];
    return NULL;
}

const char *guest_form_get(const guest_form *form, const char *name)
{
    const field *f = find(form, name);
    return f ? f->value : NULL;
}

const char *guest_form_get_len(const guest_form *form, const char *name,
                               size_t *len)
{
    const field *f = find(form, name);
    if (len)
        *len = f ? f->len : 0;
    return f ? f->value : NULL;
}

size_t guest_form_count(const guest_form *form)
{
    return form ? form->count : 0;
}

/* Takes ownership of @p name and @p value (freed on failure). */
static guest_status add(guest_form *form, char *name, char *value, size_t len,
                        guest_error *err)
{
    /* Each refusal sets its status here, not through guest__fail's return
     * value, so the append below is plainly reached only with room. */
    guest_status st = GUEST_OK;
    if (!name || !value) {
        st = GUEST_ERR_NOMEM;
        (void)guest__fail(err, st, "out of memory");
    } else if (find(form, name)) {
        /* Two values for one name leave it unclear which one a check saw
         * and which one the action used; refusing is the only safe read. */
        st = GUEST_ERR_VALIDATION;
        (void)guest__fail(err, st,
                          "the field \"%.64s\" was sent more than once", name);
    } else if (form->count >= GUEST_FORM_MAX_FIELDS) {
        st = GUEST_ERR_VALIDATION;
        (void)guest__fail(err, st, "more than %d form fields",
                          GUEST_FORM_MAX_FIELDS);
    } else if (form->count == form->cap || !form->fields) {
        size_t cap = form->cap ? form->cap * 2 : 8;
        field *grown = realloc(form->fields, cap * sizeof *grown);
        if (!grown) {
            st = GUEST_ERR_NOMEM;
            (void)guest__fail(err, st, "out of memory");
        } else {
            form->fields = grown;
            form->cap = cap;
        }
    }
    if (st != GUEST_OK) {
        free(name);
        free(value);
        return st;
    }
    form->fields[form->count++] = (field){name, value, len};
    return GUEST_OK;
}

/* Decodes @p n bytes of one urlencoded component; *len gets the decoded
 * length (the result may hold NUL bytes). */
static char *decode(const char *s, size_t n, size_t *len)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t dlen = guest__percent_decode(s, n, out, true);
    if (len)
        *len = dlen;
    return out;
}

guest_status guest_form_parse(const char *data, size_t len, guest_form **out,
                              guest_error *err)
{
    if (!out || (!data && len))
        return guest__fail(err, GUEST_ERR_INVALID, "out and data required");
    *out = NULL;
    guest_form *form = calloc(1, sizeof *form);
    if (!form)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    size_t i = 0;
    while (i < len) {
        const char *seg = data + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t slen = amp ? (size_t)(amp - seg) : len - i;
        i += slen + 1;
        if (slen == 0)
            continue;
        const char *eq = memchr(seg, '=', slen);
        size_t nlen = eq ? (size_t)(eq - seg) : slen;
        size_t vlen = 0;
        size_t name_len = 0;
        char *name = decode(seg, nlen, &name_len);
        char *value =
            eq ? decode(eq + 1, slen - nlen - 1, &vlen) : guest__strdup("");
        guest_status st;
        /* "token%00x" must not pass for the field "token". */
        if (name && strlen(name) != name_len) {
            free(name);
            free(value);
            st = guest__fail(err, GUEST_ERR_VALIDATION,
                             "a form field name holds a NUL byte");
        } else {
            st = add(form, name, value, vlen, err);
        }
        if (st != GUEST_OK) {
            guest_form_free(form);
            return st;
        }
    }
    *out = form;
    return GUEST_OK;
}

/* A form is one object of plain values. Anything nested deeper is refused
 * here, in one pass without recursion and before any allocation, because
 * jansson's parser (and json_decref) recurse once per level: a small body
 * of "[[[[..." would otherwise exhaust a server thread's stack. Members are
 * counted too, so a body of many tiny fields is refused before jansson
 * builds an object of them. Malformed text is left for jansson to name. */
static guest_status check_json_shape(const char *s, size_t len,
                                     guest_error *err)
{
    unsigned depth = 0;
    size_t members = 0;
    bool in_member = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (depth == 1 && !in_member && !strchr(",}] \t\n\r", c)) {
            in_member = true;
            if (++members > GUEST_FORM_MAX_FIELDS)
                return guest__fail(err, GUEST_ERR_VALIDATION,
                                   "more than %d form fields",
                                   GUEST_FORM_MAX_FIELDS);
        }
        switch (c) {
        case '"':
            /* A backslash always escapes the next byte, so \" and \\ stay
             * inside the string. */
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            break;
        case '{':
        case '[':
            if (++depth > 1)
                return guest__fail(err, GUEST_ERR_VALIDATION,
                                   "the JSON body nests objects or arrays; "
                                   "a form is one object of plain values");
            break;
        case '}':
        case ']':
            if (depth)
                depth--;
            break;
        case ',':
            in_member = false;
            break;
        default:
            break;
        }
    }
    return GUEST_OK;
}

guest_status guest_form_parse_json(const char *data, size_t len,
                                   guest_form **out, guest_error *err)
{
    if (!out || (!data && len))
        return guest__fail(err, GUEST_ERR_INVALID, "out and data required");
    *out = NULL;
    guest_status shape = check_json_shape(data, len, err);
    if (shape != GUEST_OK)
        return shape;
    json_error_t jerr;
    json_t *root =
        json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return guest__fail(err, GUEST_ERR_VALIDATION,
                           "malformed JSON at line %d: %.120s", jerr.line,
                           jerr.text);
    guest_status st = GUEST_OK;
    guest_form *form = NULL;
    if (!json_is_object(root)) {
        st = guest__fail(err, GUEST_ERR_VALIDATION,
                         "the JSON body is not an object");
        goto done;
    }
    form = calloc(1, sizeof *form);
    if (!form) {
        st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        char *value = NULL;
        size_t vlen = 0;
        if (json_is_string(v)) {
            vlen = json_string_length(v);
            value = malloc(vlen + 1);
            if (value) {
                memcpy(value, json_string_value(v), vlen);
                value[vlen] = '\0';
            }
        } else if (json_is_true(v)) {
            value = guest__strdup("on");
            vlen = 2;
        } else if (json_is_integer(v)) {
            value =
                guest__asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            vlen = value ? strlen(value) : 0;
        } else if (json_is_real(v)) {
            value = guest__asprintf("%.17g", json_real_value(v));
            vlen = value ? strlen(value) : 0;
        } else if (json_is_false(v) || json_is_null(v)) {
            continue;
        } else {
            st = guest__fail(err, GUEST_ERR_VALIDATION,
                             "the JSON field \"%.64s\" is not a plain value",
                             key);
            goto done;
        }
        st = add(form, guest__strdup(key), value, vlen, err);
        if (st != GUEST_OK)
            goto done;
    }
done:
    json_decref(root);
    if (st != GUEST_OK) {
        guest_form_free(form);
        return st;
    }
    *out = form;
    return GUEST_OK;
}

int guest_req_form_http_status(guest_status st)
{
    switch (st) {
    case GUEST_OK:
        return 200;
    case GUEST_ERR_TOO_LARGE:
        return 413;
    case GUEST_ERR_INVALID:
        return 415;
    case GUEST_ERR_VALIDATION:
        return 400;
    default:
        return 500;
    }
}

guest_status guest_req_form(guest_req *req, guest_form **out, guest_error *err)
{
    if (!req || !out)
        return guest__fail(err, GUEST_ERR_INVALID, "req and out required");
    *out = NULL;
    const char *data;
    size_t len;
    if (guest_req_body(req, &data, &len) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_TOO_LARGE,
                           "the request body is too large");
    if (len > req->ctx->cfg.max_body_size)
        return guest__fail(err, GUEST_ERR_TOO_LARGE,
                           "the request body is larger than %zu bytes",
                           req->ctx->cfg.max_body_size);
    const char *ct = guest_req_header(req, "Content-Type");
    if (guest__media_type_is(ct, "application/json"))
        return guest_form_parse_json(data, len, out, err);
    if (ct && *ct &&
        !guest__media_type_is(ct, "application/x-www-form-urlencoded"))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "unsupported Content-Type for a form");
    return guest_form_parse(data, len, out, err);
}
