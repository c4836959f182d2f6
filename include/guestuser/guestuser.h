/* libguestuser: temporary guest accounts for C web servers.
 * Umbrella header; adapters have their own under guestuser/adapters/. */
#ifndef GUESTUSER_GUESTUSER_H
#define GUESTUSER_GUESTUSER_H

#include "export.h"
#include "status.h"
#include "config.h"
#include "http.h"
#include "guards.h"
#include "form.h"
#include "accounts.h"
#include "users.h"
#include "identities.h"
#include "ratelimits.h"
#include "mail.h"
#include "email.h"
#include "csrf.h"
#include "views.h"
#include "cleanup.h"
#include "db.h"
#include "adapter.h"
#include "loop.h"
#include "metrics.h"

#endif
