/*
 * link.h - inter-node links: authenticated WebSocket connections between
 * cluster nodes that multiplex the streams of cross-node pairs.
 *
 * link.c owns the connections (dialling, the HELLO/AUTH handshake,
 * keepalive, redial with backoff, batching of frames into messages and
 * dispatch); link_dialer.c is the dialer's own WebSocket client on a raw
 * socket (link_websocket.c its codec, link_tls.c its TLS under wss://);
 * link_stream.c turns one stream into a peer endpoint with credit-based
 * flow control. The wire format is specified in cluster/link-protocol.md.
 */
#ifndef RELAY_LINK_H
#define RELAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cluster.h"
#include "relay/matchmaker.h"
#include "relay/metrics.h"
#include "relay/peer.h"

struct link;
struct link_stream;

/* Set up the link layer: links are accepted on and dialled from vhost,
 * streams are paired through matchmaker. */
void link_manager_start(const struct relay_config *config, const struct cluster_identity *self,
                        struct lws_context *context, struct lws_vhost *vhost,
                        struct matchmaker *matchmaker, const void *secret, size_t secret_length);
/* Shutting down: tell every peer (GOAWAY) and close every link. */
void link_manager_stop(void);
void link_manager_free(void);

/* The matchmaker's remote connector (matchmaker_connect_remote). */
struct peer *link_open_stream(void *context, struct peer *waiting,
                              const struct directory_owner *owner);

/* The cluster vhost's WebSocket protocol for links. */
extern const struct lws_protocols link_protocol;

/* Prometheus lines for every link (state, bytes), appended with emit. */
void link_manager_render_metrics(metrics_emit emit, void *buffer);

/* --- used by link_stream.c --------------------------------------------- */

/* Queue a DATA frame (header + bytes) for the peer; it leaves in the link's
 * next batch. 0, or -1 when the link is gone, closing or out of memory. */
int link_send_data(struct link *link, uint32_t stream_id, unsigned flags, const void *data,
                   size_t length);
/* Queue an already encoded control frame. */
int link_send_frame(struct link *link, const uint8_t *frame, size_t length);
/* Forget a stream (it is being freed). */
void link_forget_stream(struct link *link, struct link_stream *stream);
const struct relay_config *link_config(void);
struct matchmaker *link_matchmaker(void);

/* --- used by link_dialer.c ---------------------------------------------- */

#define LINK_HOST_MAX_LENGTH 256

/* The link's connection (NULL when it has none). */
struct lws *link_wsi(const struct link *link);
/* Whom an outbound link dials, and the URL it dials (for log lines). */
const char *link_dialed_node_id(const struct link *link);
const char *link_url(const struct link *link);
/* Host, port and whether TLS runs, from the URL; false when it is bad. */
bool link_parse_url(const struct link *link, char host[LINK_HOST_MAX_LENGTH], int *port, bool *tls);
/* Bound of a received message: a batch, or one frame of the largest size. */
size_t link_max_message(void);
/* The transport is up: start HELLO / AUTH (0, or -1 to close). */
int link_start_client_handshake(struct link *link);
/* One whole received message (a batch): its frames act. The value for the
 * lws callback (-1: close the connection). */
int link_dispatch(struct link *link, const uint8_t *message, size_t length);
/* The peer broke the WebSocket: a protocol error on a ready link (GOAWAY,
 * then close), a refused handshake before. The value for the callback. */
int link_fail(struct link *link, const char *why);
/* Record the WebSocket close status and reason we close with, and read
 * them back for the dialer's close frame. */
void link_set_close(struct link *link, uint16_t status, const char *why);
const char *link_close_reason(const struct link *link, uint16_t *status);
/* Closing: take no more frames, read nothing more. */
bool link_is_closing(const struct link *link);
/* Messages wait in the link's queue. */
bool link_has_output(const struct link *link);
void link_request_writeable(struct link *link);
/* Write queued messages (a few per turn); -1 once a closing link is
 * drained. */
int link_writeable(struct link *link);
/* Bytes the dialer wrote beside the queue (the upgrade request). */
void link_count_sent(struct link *link, size_t bytes);

/* --- link_stream.c ------------------------------------------------------ */

struct link_stream *link_stream_new(struct link *link, uint32_t id, const char *rid,
                                    const char *request_uuid, bool opened_here);
struct peer *link_stream_peer(struct link_stream *stream);
struct link_stream *link_stream_of_peer(struct peer *peer);
uint32_t link_stream_id(const struct link_stream *stream);
bool link_stream_is_opening(const struct link_stream *stream);
/* Frames from the peer node for this stream. */
void link_stream_on_paired(struct link_stream *stream);
void link_stream_on_refused(struct link_stream *stream, enum remote_answer answer);
void link_stream_on_data(struct link_stream *stream, const uint8_t *data, size_t length,
                         unsigned flags);
void link_stream_on_credit(struct link_stream *stream, uint32_t bytes);
/* The peer node closed the stream, or the link is gone (the stream is freed). */
void link_stream_on_closed(struct link_stream *stream);
/* The link became ready: send the OPEN of a stream that waited for it. */
void link_stream_send_open(struct link_stream *stream);

#endif
