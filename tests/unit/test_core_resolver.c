/*
 * test_core_resolver.c - host name resolution on the lws loop
 * (cluster/resolver.c).
 *
 * IP literals answered before resolver_lookup returns, "localhost" answered
 * from the loop with its IPv4 address, an unknown name failing, a
 * cancelled lookup never calling back, the handle written before a
 * callback that frees it, and resolver_shutdown waiting for a parked
 * lookup after its context is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../cluster/resolver.h"

struct answer {
    int calls;
    int status;
    char address[RESOLVER_ADDRESS_MAX_LENGTH];
};

static void answer_record(void *argument, int status, const char *address)
{
    struct answer *answer = argument;
    answer->calls++;
    answer->status = status;
    snprintf(answer->address, sizeof(answer->address), "%s", address);
}

/* ---- the lws loop ------------------------------------------------------- */

struct test_loop {
    struct lws_context *context;
    struct lws_protocols protocols[2];
    lws_sorted_usec_list_t tick;
};

static long long test_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* lws 4.1.6 sleeps until its next timer whatever lws_service is told: a
 * 10 ms tick bounds every wait. */
static void test_loop_on_tick(lws_sorted_usec_list_t *timer)
{
    struct test_loop *loop = lws_container_of(timer, struct test_loop, tick);
    lws_sul_schedule(loop->context, 0, &loop->tick, test_loop_on_tick, 10 * LWS_US_PER_MS);
}

static void test_loop_init(struct test_loop *loop)
{
    struct lws_context_creation_info info;
    memset(loop, 0, sizeof(*loop));
    memset(&info, 0, sizeof(info));
    lws_set_log_level(LLL_ERR, NULL);
    loop->protocols[0].name = "resolver-test";
    loop->protocols[0].callback = lws_callback_http_dummy;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop->protocols;
    loop->context = lws_create_context(&info);
    assert_non_null(loop->context);
    lws_sul_schedule(loop->context, 0, &loop->tick, test_loop_on_tick, 10 * LWS_US_PER_MS);
}

static void test_loop_destroy(struct test_loop *loop)
{
    lws_sul_cancel(&loop->tick);
    lws_context_destroy(loop->context);
    loop->context = NULL;
}

/* Serve until the answer arrives or timeout_ms pass; whether it arrived. */
static bool test_loop_run_until_answered(struct test_loop *loop, const struct answer *answer,
                                         int timeout_ms)
{
    long long give_up = test_now_ms() + timeout_ms;
    while (answer->calls == 0 && test_now_ms() < give_up)
        lws_service(loop->context, 0);
    return answer->calls > 0;
}

static void test_loop_run_for(struct test_loop *loop, int milliseconds)
{
    long long until = test_now_ms() + milliseconds;
    while (test_now_ms() < until)
        lws_service(loop->context, 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_literal_is_answered_at_once(void **state)
{
    struct test_loop loop;
    struct answer v4 = {0}, v6 = {0};
    /* Any value but NULL, to see resolver_lookup clear it. */
    struct resolver_request *request = (struct resolver_request *)&v4;

    test_loop_init(&loop);
    resolver_lookup(&request, loop.context, "127.0.0.1", answer_record, &v4);
    assert_null(request);
    assert_int_equal(v4.calls, 1);
    assert_int_equal(v4.status, 0);
    assert_string_equal(v4.address, "127.0.0.1");

    resolver_lookup(&request, loop.context, "::1", answer_record, &v6);
    assert_null(request);
    assert_int_equal(v6.calls, 1);
    assert_int_equal(v6.status, 0);
    assert_string_equal(v6.address, "::1");

    /* Nothing more arrives from the loop. */
    test_loop_run_for(&loop, 50);
    assert_int_equal(v4.calls, 1);
    assert_int_equal(v6.calls, 1);
    test_loop_destroy(&loop);
    resolver_shutdown();
}

static void test_localhost_is_answered_from_the_loop(void **state)
{
    struct test_loop loop;
    struct resolver_request *request = NULL;
    struct answer answer = {0};

    test_loop_init(&loop);
    resolver_lookup(&request, loop.context, "localhost", answer_record, &answer);
    /* Not answered inside the call: the lookup runs in glibc's thread. */
    assert_non_null(request);
    assert_int_equal(answer.calls, 0);
    assert_true(test_loop_run_until_answered(&loop, &answer, 5000));
    assert_int_equal(answer.status, 0);
    /* IPv4 first, even where localhost also names ::1. */
    assert_string_equal(answer.address, "127.0.0.1");
    test_loop_run_for(&loop, 50);
    assert_int_equal(answer.calls, 1);
    test_loop_destroy(&loop);
    resolver_shutdown();
}

static void test_unknown_name_fails(void **state)
{
    struct test_loop loop;
    struct resolver_request *request = NULL;
    struct answer answer = {0};

    test_loop_init(&loop);
    resolver_lookup(&request, loop.context, "no-such-host.invalid", answer_record, &answer);
    /* Past the resolver's own deadline, in case DNS does not answer. */
    assert_true(test_loop_run_until_answered(&loop, &answer, 15000));
    assert_int_equal(answer.calls, 1);
    assert_int_not_equal(answer.status, 0);
    assert_true(answer.address[0] != '\0');
    test_loop_destroy(&loop);
    resolver_shutdown();
}

static void test_cancel_means_no_callback(void **state)
{
    struct test_loop loop;
    struct resolver_request *request = NULL;
    struct answer cancelled = {0}, later = {0}, other = {0};

    test_loop_init(&loop);
    resolver_lookup(&request, loop.context, "localhost", answer_record, &cancelled);
    assert_non_null(request);
    resolver_cancel(request);
    resolver_cancel(NULL);

    /* Another lookup running meanwhile is answered, and reaps the
     * cancelled one if glibc had it parked. */
    resolver_lookup(&request, loop.context, "localhost", answer_record, &other);
    assert_true(test_loop_run_until_answered(&loop, &other, 5000));
    assert_int_equal(other.status, 0);

    /* Cancelled once glibc surely runs it (parked, not freed). */
    resolver_lookup(&request, loop.context, "no-such-host.invalid", answer_record, &later);
    assert_non_null(request);
    test_loop_run_for(&loop, 20);
    if (later.calls == 0)
        resolver_cancel(request);
    test_loop_run_for(&loop, 200);
    assert_int_equal(cancelled.calls, 0);
    assert_true(later.calls <= 1);
    int later_calls = later.calls;
    test_loop_run_for(&loop, 100);
    assert_int_equal(later.calls, later_calls);
    test_loop_destroy(&loop);
    resolver_shutdown();
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(later.calls, later_calls);
}

/* The caller keeps the handle in memory its callback may free: the
 * resolver must not write it after calling back (ASan would tell). */
struct holder {
    struct resolver_request *request;
    struct answer *answer;
};

static void holder_free_on_answer(void *argument, int status, const char *address)
{
    struct holder *holder = argument;
    answer_record(holder->answer, status, address);
    free(holder);
}

static void test_callback_may_free_the_handle(void **state)
{
    struct test_loop loop;
    struct answer literal = {0}, name = {0};

    test_loop_init(&loop);
    struct holder *holder = calloc(1, sizeof(*holder));
    assert_non_null(holder);
    holder->answer = &literal;
    resolver_lookup(&holder->request, loop.context, "127.0.0.1", holder_free_on_answer, holder);
    assert_int_equal(literal.calls, 1);

    holder = calloc(1, sizeof(*holder));
    assert_non_null(holder);
    holder->answer = &name;
    resolver_lookup(&holder->request, loop.context, "localhost", holder_free_on_answer, holder);
    assert_true(test_loop_run_until_answered(&loop, &name, 5000));
    assert_int_equal(name.status, 0);
    test_loop_destroy(&loop);
    resolver_shutdown();
}

#define BATCH_LENGTH 32

/* A lookup cancelled while glibc runs it stays parked past its context's
 * life: resolver_shutdown, after lws_context_destroy as in the node, waits
 * for it and frees it without touching the destroyed context (which ASan
 * would report). A batch cancelled at once leaves some lookups queued
 * (freed at once), some running (parked) and perhaps some done. */
static void test_shutdown_after_the_context_is_gone(void **state)
{
    struct test_loop loop;
    struct resolver_request *batch[BATCH_LENGTH], *request = NULL;
    struct answer answer = {0};

    test_loop_init(&loop);
    for (int i = 0; i < BATCH_LENGTH; i++) {
        resolver_lookup(&batch[i], loop.context, i % 2 ? "localhost" : "no-such-host.invalid",
                        answer_record, &answer);
        assert_non_null(batch[i]);
    }
    for (int i = 0; i < BATCH_LENGTH; i++)
        resolver_cancel(batch[i]);
    test_loop_destroy(&loop);
    resolver_shutdown();
    assert_int_equal(answer.calls, 0);

    /* And the resolver works again afterwards, on a new context. */
    test_loop_init(&loop);
    resolver_lookup(&request, loop.context, "localhost", answer_record, &answer);
    assert_true(test_loop_run_until_answered(&loop, &answer, 5000));
    assert_int_equal(answer.status, 0);
    test_loop_destroy(&loop);
    resolver_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_is_answered_at_once),
        cmocka_unit_test(test_localhost_is_answered_from_the_loop),
        cmocka_unit_test(test_unknown_name_fails),
        cmocka_unit_test(test_cancel_means_no_callback),
        cmocka_unit_test(test_callback_may_free_the_handle),
        cmocka_unit_test(test_shutdown_after_the_context_is_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
