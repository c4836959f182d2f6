/* libguestuser adapter for GNU libmicrohttpd (library guestuser::mhd). */
#ifndef GUESTUSER_ADAPTERS_MHD_H
#define GUESTUSER_ADAPTERS_MHD_H

#include <microhttpd.h>

#include "../guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Binds a guest_ctx and a handler to libmicrohttpd. */
typedef struct guest_mhd guest_mhd;

/**
 * Creates an adapter that runs @p handler (with @p userdata) for every
 * request. @p ctx is borrowed and must outlive the adapter. Free with
 * guest_mhd_free() after the daemon stopped.
 */
GUEST_API GUEST_NODISCARD guest_status guest_mhd_new(guest_ctx *ctx,
                                                     guest_handler_fn handler,
                                                     void *userdata,
                                                     guest_mhd **out);
/** Releases @p app; NULL is a no-op. */
GUEST_API void guest_mhd_free(guest_mhd *app);

/**
 * Starts a libmicrohttpd daemon (a thread per connection) on @p bind_addr
 * (IPv4 or IPv6 literal; NULL: 127.0.0.1) and @p port, with the three
 * callbacks below installed. Stop it with MHD_stop_daemon().
 * GUEST_ERR_INVALID for a bad address, GUEST_ERR_CONFIG when it cannot bind.
 */
GUEST_API GUEST_NODISCARD guest_status guest_mhd_start(guest_mhd *app,
                                                       const char *bind_addr,
                                                       uint16_t port,
                                                       struct MHD_Daemon **out);

/* For applications that start their own daemon: pass all three, each with
 * the guest_mhd as its closure:
 *   MHD_start_daemon(flags, port, NULL, NULL, guest_mhd_access, app,
 *       MHD_OPTION_URI_LOG_CALLBACK, guest_mhd_uri_log, app,
 *       MHD_OPTION_NOTIFY_COMPLETED, guest_mhd_completed, app, ...); */

/** MHD_OPTION_URI_LOG_CALLBACK: keeps the raw request target. */
GUEST_API void *guest_mhd_uri_log(void *cls, const char *uri,
                                  struct MHD_Connection *connection);
/** The MHD_AccessHandlerCallback. */
GUEST_API enum MHD_Result
guest_mhd_access(void *cls, struct MHD_Connection *connection, const char *url,
                 const char *method, const char *version,
                 const char *upload_data, size_t *upload_data_size,
                 void **req_cls);
/** MHD_OPTION_NOTIFY_COMPLETED: frees the per-request state. */
GUEST_API void guest_mhd_completed(void *cls, struct MHD_Connection *connection,
                                   void **req_cls,
                                   enum MHD_RequestTerminationCode toe);

#ifdef __cplusplus
}
#endif
#endif
