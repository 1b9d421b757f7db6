/*
 * redis_adapter.c - hiredis's asynchronous API on lws's own poll loop.
 *
 * hiredis asks for read and write interest through the hooks in
 * redisAsyncContext.ev and expects redisAsyncHandleRead/Write to be called
 * when its socket is ready. Here each hiredis socket becomes an lws wsi of
 * the raw *file* role (the raw socket role would read the socket itself and
 * steal hiredis's bytes) bound to directory_redis_protocol, with the adapter
 * struct as the wsi's opaque user data:
 *
 *   readable  (LWS_CALLBACK_RAW_RX_FILE)        -> redisAsyncHandleRead
 *   writeable (LWS_CALLBACK_RAW_WRITEABLE_FILE) -> redisAsyncHandleWrite
 *   addWrite                                    -> lws_callback_on_writable
 *   addRead / delRead                           -> rx flow control
 *   cleanup (hiredis frees the context)         -> close the wsi
 *
 * Descriptor ownership: lws always closes the descriptor of a wsi it frees
 * and 4.1.6 cannot detach one, while hiredis closes its own in redisFree.
 * lws is therefore handed a dup() of the socket: each library closes exactly
 * the descriptor it holds, whichever finishes first, so neither ever closes
 * a number the other (or a new connection reusing the number) still uses.
 * It also keeps hiredis's descriptor valid when lws drops the wsi on its own
 * (POLLHUP, context teardown), so hiredis can still read the socket error.
 *
 * Errors: read interest stays on from adoption, so a socket that fails (a
 * refused connect, a reset, EOF) polls readable and hiredis reads the
 * error itself. Should lws drop the wsi on its own, both handlers are
 * dispatched so that hiredis still sees the failure.
 *
 * The adapter lives from attach until lws reports the wsi closed
 * (LWS_CALLBACK_RAW_CLOSE_FILE); by then hiredis has released the context,
 * if necessary because we made it.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "directory_redis.h"
#include "redis_adapter.h"

struct redis_adapter {
    redisAsyncContext *hiredis; /* NULL once hiredis released it */
    struct lws *wsi;            /* NULL once lws is closing it */
    struct lws_context *context;
    /* Re-requests POLLOUT after a writeable callback (see
     * redis_adapter_on_writeable). */
    lws_sorted_usec_list_t write_retry;
    redis_adapter_release_callback released;
    void *owner;
    bool reading;      /* POLLIN wanted (lws adopts with POLLIN on) */
    bool writing;      /* hiredis has output: POLLOUT wanted */
    bool in_callback;  /* inside one of our wsi's callbacks */
    bool in_writeable; /* inside its writeable callback */
};

static void redis_adapter_request_writeable(lws_sorted_usec_list_t *timer)
{
    struct redis_adapter *adapter = lws_container_of(timer, struct redis_adapter, write_retry);
    if (adapter->wsi != NULL && adapter->writing)
        lws_callback_on_writable(adapter->wsi);
}

static void redis_adapter_add_read(void *data)
{
    struct redis_adapter *adapter = data;
    if (adapter->reading || adapter->wsi == NULL)
        return;
    adapter->reading = true;
    /* PROCESS_NOW: we may be outside the wsi's own callback. */
    lws_rx_flow_control(adapter->wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static void redis_adapter_del_read(void *data)
{
    struct redis_adapter *adapter = data;
    if (!adapter->reading || adapter->wsi == NULL)
        return;
    adapter->reading = false;
    lws_rx_flow_control(adapter->wsi, 0 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

/* hiredis calls this for every command it buffers, so only the transition
 * reaches lws. While writing is set, POLLOUT is requested or the retry timer
 * is pending. */
static void redis_adapter_add_write(void *data)
{
    struct redis_adapter *adapter = data;
    if (adapter->writing || adapter->wsi == NULL)
        return;
    adapter->writing = true;
    /* Inside the writeable callback a request would be forgotten: the
     * callback's epilogue schedules the retry timer instead. */
    if (!adapter->in_writeable)
        lws_callback_on_writable(adapter->wsi);
}

/* lws has no way to withdraw a writeable request: a late callback finds
 * writing false and does nothing. */
static void redis_adapter_del_write(void *data)
{
    struct redis_adapter *adapter = data;
    adapter->writing = false;
}

/* hiredis is freeing the context. Tell the owner, then get the wsi closed:
 * from inside the wsi's own callback by returning -1 (which the callback
 * does when it finds the context gone), otherwise synchronously, which
 * frees the adapter through LWS_CALLBACK_RAW_CLOSE_FILE before
 * lws_set_timeout returns. */
static void redis_adapter_cleanup(void *data)
{
    struct redis_adapter *adapter = data;
    const redisAsyncContext *hiredis = adapter->hiredis;

    adapter->hiredis = NULL;
    adapter->writing = false;
    lws_sul_cancel(&adapter->write_retry);
    if (adapter->released != NULL)
        adapter->released(adapter->owner, hiredis);
    if (adapter->wsi == NULL || adapter->in_callback)
        return;
    /* KILL_SYNC: the ASYNC variant can leave the loop asleep in poll(). */
    lws_set_timeout(adapter->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* lws dropped the wsi while hiredis still uses the socket (POLLHUP without
 * readable data, context teardown). Make hiredis notice, as it would on a
 * poll error: run both handlers, which find the socket error or EOF and
 * fail the context. If the socket looks healthy to hiredis, shut it down
 * and read the EOF; as a last resort free the context (the release hook
 * still tells the owner). */
static void redis_adapter_fail_context(struct redis_adapter *adapter)
{
    redisAsyncHandleWrite(adapter->hiredis);
    if (adapter->hiredis != NULL)
        redisAsyncHandleRead(adapter->hiredis);
    if (adapter->hiredis != NULL) {
        shutdown(adapter->hiredis->c.fd, SHUT_RDWR);
        redisAsyncHandleRead(adapter->hiredis);
    }
    if (adapter->hiredis != NULL)
        redisAsyncFree(adapter->hiredis);
}

static int redis_adapter_on_readable(struct redis_adapter *adapter)
{
    if (adapter->hiredis == NULL)
        return -1;
    adapter->in_callback = true;
    redisAsyncHandleRead(adapter->hiredis);
    adapter->in_callback = false;
    return adapter->hiredis == NULL ? -1 : 0;
}

/* The raw file role clears POLLOUT after this callback returns, so a wish
 * to write more (a partial write, or commands added by a connect callback)
 * is re-requested from a 1 us timer, after the role has cleared it. */
static int redis_adapter_on_writeable(struct redis_adapter *adapter)
{
    if (adapter->hiredis == NULL)
        return -1;
    if (!adapter->writing)
        return 0;
    adapter->in_callback = true;
    adapter->in_writeable = true;
    redisAsyncHandleWrite(adapter->hiredis);
    adapter->in_writeable = false;
    adapter->in_callback = false;
    if (adapter->hiredis == NULL)
        return -1;
    if (adapter->writing)
        lws_sul_schedule(adapter->context, 0, &adapter->write_retry,
                         redis_adapter_request_writeable, 1);
    return 0;
}

static void redis_adapter_on_closed(struct redis_adapter *adapter)
{
    adapter->wsi = NULL;
    if (adapter->hiredis != NULL)
        redis_adapter_fail_context(adapter);
    lws_sul_cancel(&adapter->write_retry);
    free(adapter);
}

static int redis_adapter_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                  void *in, size_t length)
{
    struct redis_adapter *adapter;

    /* Other reasons (protocol init, thread id...) may come with a
     * placeholder wsi: look at the opaque data only for our raw files. */
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        adapter = lws_get_opaque_user_data(wsi);
        return adapter != NULL ? redis_adapter_on_readable(adapter) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        adapter = lws_get_opaque_user_data(wsi);
        return adapter != NULL ? redis_adapter_on_writeable(adapter) : -1;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        adapter = lws_get_opaque_user_data(wsi);
        if (adapter != NULL) {
            lws_set_opaque_user_data(wsi, NULL);
            redis_adapter_on_closed(adapter);
        }
        return 0;
    default:
        return 0;
    }
}

const struct lws_protocols directory_redis_protocol = {
    .name = "relay-directory-redis",
    .callback = redis_adapter_callback,
};

int redis_adapter_attach(redisAsyncContext *hiredis, struct lws_vhost *vhost,
                         redis_adapter_release_callback released, void *owner)
{
    struct redis_adapter *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return -1;
    /* Children (a redis-server a test starts, a CGI...) must not inherit
     * the connection. */
    fcntl(hiredis->c.fd, F_SETFD, FD_CLOEXEC);
    int lws_descriptor = fcntl(hiredis->c.fd, F_DUPFD_CLOEXEC, 0);
    if (lws_descriptor < 0) {
        free(adapter);
        return -1;
    }
    adapter->hiredis = hiredis;
    adapter->released = released;
    adapter->owner = owner;
    adapter->reading = true;

    lws_adopt_desc_t adoption = {
        .vh = vhost,
        .type = LWS_ADOPT_RAW_FILE_DESC,
        .fd.filefd = lws_descriptor,
        .vh_prot_name = directory_redis_protocol.name,
        .opaque = adapter,
    };
    adapter->wsi = lws_adopt_descriptor_vhost_via_info(&adoption);
    if (adapter->wsi == NULL) {
        /* lws closes only sockets it fails to adopt, not files. */
        close(lws_descriptor);
        free(adapter);
        return -1;
    }
    adapter->context = lws_get_context(adapter->wsi);
    hiredis->ev.data = adapter;
    hiredis->ev.addRead = redis_adapter_add_read;
    hiredis->ev.delRead = redis_adapter_del_read;
    hiredis->ev.addWrite = redis_adapter_add_write;
    hiredis->ev.delWrite = redis_adapter_del_write;
    hiredis->ev.cleanup = redis_adapter_cleanup;
    return 0;
}
