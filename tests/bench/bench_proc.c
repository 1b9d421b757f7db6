/*
 * bench_proc.c - CPU and memory of the server processes, from /proc/PID.
 *
 * CPU comes from /proc/PID/task/TID/schedstat (nanoseconds on CPU, summed
 * over the threads) because /proc/PID/stat counts in clock ticks (10 ms):
 * too coarse for "server CPU per pair" over a run of a second. When
 * schedstat is missing (kernels without CONFIG_SCHED_INFO) stat's utime +
 * stime is used. Memory is VmRSS from /proc/PID/status.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int64_t bench_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

double bench_proc_self_cpu_seconds(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
}

static double bench_proc_schedstat_seconds(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    unsigned long long on_cpu_ns = 0;
    int fields = fscanf(file, "%llu", &on_cpu_ns);
    fclose(file);
    return fields == 1 ? (double)on_cpu_ns / 1e9 : -1;
}

static double bench_proc_threads_cpu_seconds(pid_t pid)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL)
        return -1;
    double total = 0;
    int threads = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char stat_path[320];
        snprintf(stat_path, sizeof(stat_path), "/proc/%d/task/%s/schedstat", (int)pid,
                 entry->d_name);
        double seconds = bench_proc_schedstat_seconds(stat_path);
        if (seconds < 0) {
            closedir(tasks);
            return -1;
        }
        total += seconds;
        threads++;
    }
    closedir(tasks);
    return threads > 0 ? total : -1;
}

/* utime and stime are fields 14 and 15; the command name (field 2) may hold
 * spaces, so parsing starts after its closing parenthesis. */
static double bench_proc_stat_seconds(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    char *got = fgets(line, sizeof(line), file);
    fclose(file);
    char *position = got != NULL ? strrchr(line, ')') : NULL;
    if (position == NULL)
        return -1;
    unsigned long user_ticks, system_ticks;
    if (sscanf(position + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &user_ticks,
               &system_ticks) != 2)
        return -1;
    return (double)(user_ticks + system_ticks) / (double)sysconf(_SC_CLK_TCK);
}

double bench_proc_cpu_seconds(pid_t pid)
{
    double seconds = bench_proc_threads_cpu_seconds(pid);
    return seconds >= 0 ? seconds : bench_proc_stat_seconds(pid);
}

long bench_proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    long rss = -1;
    while (fgets(line, sizeof(line), file) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            rss = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(file);
    return rss;
}
