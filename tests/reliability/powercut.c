/* Power-loss journal (reliability plan R3): preloaded into a process, it records every write,
 * truncation and sync of the files whose path starts with $POWERCUT_PREFIX, so that after a
 * kill -9 tests/reliability/powercut.py can undo what was never synced, as a power cut would.
 *
 * Each write appends one record to $POWERCUT_JOURNAL (O_APPEND, before the real write):
 *   'W' path offset length old_size old_length old_bytes new_bytes
 *   'T' path new_size old_size cut_length cut_bytes   (ftruncate; cut_bytes: what a shrink drops)
 *   'S' path                                          (fsync/fdatasync returned 0)
 * Lengths are little-endian u32 (path) and u64 (the rest). "-shm" files are not recorded: SQLite
 * rebuilds the WAL index from the WAL when the first connection opens after a crash.
 *
 * SIGUSR2 arms a crash point: the process kills itself (SIGKILL) right after its next recorded
 * write, which no sync has covered yet, e.g. halfway through writing a commit's WAL frames.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static const char *prefix;
static size_t prefix_length;
static int journal = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t crash_armed;

static void arm_crash(int signal_number) {
    (void)signal_number;
    crash_armed = 1;
}

/* After a recorded write or truncation has reached the file: the armed crash point. */
static void crash_if_armed(void) {
    if (crash_armed)
        kill(getpid(), SIGKILL);
}

__attribute__((constructor)) static void powercut_init(void) {
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    const char *path = getenv("POWERCUT_JOURNAL");
    prefix = getenv("POWERCUT_PREFIX");
    if (path && prefix && *prefix) {
        prefix_length = strlen(prefix);
        journal = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct sigaction action = {.sa_handler = arm_crash, .sa_flags = SA_RESTART};
        sigemptyset(&action.sa_mask);
        sigaction(SIGUSR2, &action, NULL);
    }
}

/* The file's path when it is one we record, else 0. */
static int tracked(int fd, char *path, size_t size) {
    if (journal < 0 || fd == journal)
        return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    if ((size_t)n < prefix_length || memcmp(path, prefix, prefix_length) != 0)
        return 0;
    return !((size_t)n >= 4 && strcmp(path + n - 4, "-shm") == 0);
}

/* One record, appended with one writev so that threads never interleave inside it. */
static void append(char kind, const char *path, const uint64_t *numbers, int count,
                   const void *first, size_t first_length, const void *second,
                   size_t second_length) {
    uint32_t path_length = (uint32_t)strlen(path);
    struct iovec parts[] = {
        {&kind, 1},
        {&path_length, sizeof path_length},
        {(void *)path, path_length},
        {(void *)numbers, sizeof(uint64_t) * (size_t)count},
        {(void *)first, first_length},
        {(void *)second, second_length},
    };
    size_t total = 0;
    for (int i = 0; i < 6; i++)
        total += parts[i].iov_len;
    if (writev(journal, parts, 6) != (ssize_t)total)
        abort(); /* a journal with a hole would make the cut wrong: stop loudly instead */
}

static uint64_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void record_write(int fd, const char *path, const void *buffer, size_t length,
                         off_t offset) {
    uint64_t old_size = file_size(fd);
    uint64_t old_length = 0;
    if ((uint64_t)offset < old_size)
        old_length = old_size - (uint64_t)offset < length ? old_size - (uint64_t)offset : length;
    char *old = malloc(old_length ? old_length : 1);
    if (!old)
        abort();
    if (old_length && pread(fd, old, old_length, offset) != (ssize_t)old_length)
        abort();
    uint64_t numbers[] = {(uint64_t)offset, length, old_size, old_length};
    append('W', path, numbers, 4, old, old_length, buffer, length);
    free(old);
}

ssize_t pwrite64(int fd, const void *buffer, size_t length, off_t offset) {
    char path[4096];
    if (!tracked(fd, path, sizeof path))
        return real_pwrite64(fd, buffer, length, offset);
    pthread_mutex_lock(&lock);
    record_write(fd, path, buffer, length, offset);
    ssize_t written = real_pwrite64(fd, buffer, length, offset);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return written;
}

ssize_t pwrite(int fd, const void *buffer, size_t length, off_t offset) {
    return pwrite64(fd, buffer, length, offset);
}

ssize_t write(int fd, const void *buffer, size_t length) {
    char path[4096];
    if (!tracked(fd, path, sizeof path))
        return real_write(fd, buffer, length);
    pthread_mutex_lock(&lock);
    int flags = fcntl(fd, F_GETFL);
    off_t offset = (flags >= 0 && (flags & O_APPEND)) ? (off_t)file_size(fd)
                                                      : lseek(fd, 0, SEEK_CUR);
    record_write(fd, path, buffer, length, offset);
    ssize_t written = real_write(fd, buffer, length);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return written;
}

int ftruncate64(int fd, off_t size) {
    char path[4096];
    if (!tracked(fd, path, sizeof path))
        return real_ftruncate64(fd, size);
    pthread_mutex_lock(&lock);
    uint64_t old_size = file_size(fd);
    uint64_t cut = old_size > (uint64_t)size ? old_size - (uint64_t)size : 0;
    char *dropped = malloc(cut ? cut : 1);
    if (!dropped)
        abort();
    if (cut && pread(fd, dropped, cut, size) != (ssize_t)cut)
        abort();
    uint64_t numbers[] = {(uint64_t)size, old_size, cut};
    append('T', path, numbers, 3, dropped, cut, NULL, 0);
    free(dropped);
    int result = real_ftruncate64(fd, size);
    crash_if_armed();
    pthread_mutex_unlock(&lock);
    return result;
}

int ftruncate(int fd, off_t size) { return ftruncate64(fd, size); }

/* The lock is held across the sync, so every write recorded before its 'S' happened before
 * the sync began (another thread's write cannot slip in between the sync and its record). */
static int synced(int fd, int (*sync)(int)) {
    char path[4096];
    if (!tracked(fd, path, sizeof path))
        return sync(fd);
    pthread_mutex_lock(&lock);
    int result = sync(fd);
    if (result == 0)
        append('S', path, NULL, 0, NULL, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
    return result;
}

int fsync(int fd) { return synced(fd, real_fsync); }

int fdatasync(int fd) { return synced(fd, real_fdatasync); }
